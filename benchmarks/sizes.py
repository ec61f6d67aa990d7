"""Package sizes: the dependencies layer as Lambda unpacks it, and the function code (src/).

The layer is built the way it ships to arm64 Lambda (manylinux2014_aarch64 wheels for CPython 3.13,
no byte-compilation, as `sam build` unpacks wheels) and cached under .bench/ by the requirements'
hash, so only the first run needs PyPI.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.common import PYTHON, ROOT

REQUIREMENTS = ROOT / "layers" / "deps" / "requirements.txt"
CACHE = ROOT / ".bench"
PIP_TARGET = [
    "--platform", "manylinux2014_aarch64",
    "--only-binary=:all:",
    "--python-version", "3.13",
    "--implementation", "cp",
]


@dataclass
class Size:
    unzipped: int
    zipped: int
    files: int
    largest: list[tuple[str, int]] = field(default_factory=list)  # top-level entries by size


def _files(root: Path) -> list[Path]:
    skip = ("__pycache__", ".egg-info")
    return sorted(
        p for p in root.rglob("*") if p.is_file() and not any(part.endswith(skip) for part in p.parts)
    )


def measure(root: Path, prefix: str = "") -> Size:
    files = _files(root)
    buffer = io.BytesIO()
    by_top: Counter[str] = Counter()
    total = 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            relative = path.relative_to(root)
            size = path.stat().st_size
            total += size
            by_top[relative.parts[0] if len(relative.parts) > 1 else relative.name] += size
            archive.write(path, prefix + str(relative))
    return Size(total, len(buffer.getvalue()), len(files), by_top.most_common(8))


def layer_dir(build: bool) -> Path | None:
    """The built layer (its python/ directory), building it on a cache miss when `build`."""
    key = hashlib.sha256(REQUIREMENTS.read_bytes() + " ".join(PIP_TARGET).encode()).hexdigest()[:12]
    target = CACHE / f"layer-{key}"
    if (target / ".complete").exists():
        return target / "python"
    if not build:
        return None
    staging = CACHE / f"layer-{key}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    subprocess.run(
        [PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
         "-r", str(REQUIREMENTS), "-t", str(staging / "python"), *PIP_TARGET],
        check=True,
    )
    (staging / ".complete").write_text("built by benchmarks/sizes.py\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target / "python"


def layer_size(build: bool) -> Size | None:
    path = layer_dir(build)
    return None if path is None else measure(path, "python/")


def code_size() -> Size:
    """src/ as `CodeUri: src/` ships it (no __pycache__, no egg-info)."""
    return measure(ROOT / "src")
