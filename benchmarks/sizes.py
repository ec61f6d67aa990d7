"""Package sizes: the dependencies layer as Lambda unpacks it, and the function code (src/).

The layer is built the way it ships to arm64 Lambda (its recipe, layers/deps/Makefile:
manylinux2014_aarch64 wheels for CPython 3.13, byte-compiled by a Python 3.13) and cached under
.bench/ by the recipe's and the requirements' hash, so only the first run needs PyPI. The function
code is what src/Makefile builds. Both are measured with their bytecode, as they ship.
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
LAYER_MAKEFILE = ROOT / "layers" / "deps" / "Makefile"
CACHE = ROOT / ".bench"


@dataclass
class Size:
    unzipped: int
    zipped: int
    files: int
    largest: list[tuple[str, int]] = field(default_factory=list)  # top-level entries by size


def _files(root: Path, bytecode: bool) -> list[Path]:
    skip = (".egg-info",) if bytecode else ("__pycache__", ".egg-info")
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and not any(part.endswith(skip) for part in p.relative_to(root).parts)
    )


def measure(root: Path, prefix: str = "", bytecode: bool = True) -> Size:
    files = _files(root, bytecode)
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


def _pip(*args: str, python: str = PYTHON) -> None:
    proc = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"pip install failed ({proc.returncode}): {proc.stderr[-2000:]}")


def _boto3_pin() -> str:
    """boto3 as pyproject.toml pins it (the Lambda runtime provides boto3; the layer leaves it out)."""
    import tomllib

    deps: list[str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return next(d for d in deps if d.replace(" ", "").startswith("boto3"))


def runtime_python(build: bool) -> Path | None:
    """A venv holding exactly what the function has on Lambda (the layer's packages plus boto3), for
    this machine's platform: the dev venv has more (moto, email-validator, ...), and optional
    imports such as FastAPI's `email_validator` would make its cold start slower than Lambda's."""
    key = hashlib.sha256(REQUIREMENTS.read_bytes() + _boto3_pin().encode()).hexdigest()[:12]
    target = CACHE / f"runtime-{key}"
    python = target / "bin" / "python"
    if (target / ".complete").exists():
        return python
    if not build:
        return None
    shutil.rmtree(target, ignore_errors=True)
    CACHE.mkdir(exist_ok=True)
    venv = subprocess.run([PYTHON, "-m", "venv", str(target)], capture_output=True, text=True)
    if venv.returncode != 0:
        raise RuntimeError(f"python -m venv failed ({venv.returncode}): {venv.stderr[-2000:]}")
    _pip("-r", str(REQUIREMENTS), _boto3_pin(), python=str(python))
    (target / ".complete").write_text("built by benchmarks/sizes.py\n")
    _prune("runtime-", keep=target)
    return python


def _prune(prefix: str, keep: Path) -> None:
    """Builds for requirements that have since changed: never used again."""
    for stale in CACHE.glob(f"{prefix}*"):
        if stale != keep and stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)


def _recipe_python() -> tuple[str, str]:
    """The Python the recipes run with here: a 3.13, else this one (the sizes then say so)."""
    from benchmarks.shipped import _version, python313

    found = python313()
    python = str(found) if found is not None else PYTHON
    return python, _version(python) or "3.13"


def layer_dir(build: bool) -> Path | None:
    """The built layer (its python/ directory), building it on a cache miss when `build`."""
    python, version = _recipe_python()
    key = hashlib.sha256(
        REQUIREMENTS.read_bytes() + LAYER_MAKEFILE.read_bytes() + version.encode()
    ).hexdigest()[:12]
    target = CACHE / f"layer-{key}"
    if (target / ".complete").exists():
        return target / "python"
    if not build:
        return None
    staging = CACHE / f"layer-{key}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    # The layer's own build (what `sam build` runs), so the figure is the shipped layer's.
    proc = subprocess.run(
        [
            "make",
            "-s",
            "-C",
            str(LAYER_MAKEFILE.parent),
            "build-DepsLayer",
            f"ARTIFACTS_DIR={staging}",
            f"PYTHON313={python}",
            f"PYTHON_VERSION={version}",
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode:
        raise RuntimeError(f"layer build failed ({proc.returncode}): {proc.stderr[-2000:]}")
    (staging / ".complete").write_text("built by benchmarks/sizes.py\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    _prune("layer-", keep=target)
    return target / "python"


def layer_size(build: bool) -> Size | None:
    path = layer_dir(build)
    return None if path is None else measure(path, "python/")


def code_size(tmp: Path) -> Size:
    """The function code as src/Makefile builds it for `CodeUri: src/` (bytecode included)."""
    from benchmarks.shipped import CODE_DIR, make

    python, version = _recipe_python()
    target = tmp / "code-size"
    make(CODE_DIR, "build-ApiFunction", target, PYTHON313=python, PYTHON_VERSION=version)
    return measure(target)
