"""The artefact as it ships: the build recipe's layer and function code, and the runtime's boto3.

`sam build` runs layers/deps/Makefile (`build-DepsLayer`) and src/Makefile (`build-<Function>`),
each of which byte-compiles with a CPython 3.13. The cold-start rows labelled `as shipped` run what
those recipes produce, read-only and with bytecode writing off, as /opt and /var/task are on Lambda;
tests/infra/test_build.py checks the same output. Both need a Python 3.13: `python313()` finds one.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import stat
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import PYTHON, ROOT

LAYER_DIR = ROOT / "layers" / "deps"
CODE_DIR = ROOT / "src"
CACHE = ROOT / ".bench"
LAMBDA_PYTHON = "3.13"


def _version(python: str) -> str | None:
    try:
        proc = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def python313() -> Path | None:
    """A CPython 3.13 of this machine: $PYTHON313, else `python3.13` or `python3` on PATH when it
    is 3.13 (an inactive pyenv shim is not), else the newest 3.13 that pyenv installed."""
    candidates: list[str] = []
    if os.environ.get("PYTHON313"):
        candidates.append(os.environ["PYTHON313"])
    candidates += [p for p in (shutil.which("python3.13"), shutil.which("python3")) if p]
    pyenv = shutil.which("pyenv")
    root = os.environ.get("PYENV_ROOT")
    if root is None and pyenv is not None:
        proc = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=False)
        root = proc.stdout.strip() or None
    if root is None and (Path.home() / ".pyenv").is_dir():
        root = str(Path.home() / ".pyenv")
    if root is not None:
        installed = sorted(
            Path(root, "versions").glob("3.13.*/bin/python3.13"),
            key=lambda p: [int(x) if x.isdigit() else 0 for x in p.parts[-3].split(".")],
        )
        candidates += [str(p) for p in reversed(installed)]
    for candidate in candidates:
        if _version(candidate) == LAMBDA_PYTHON:
            return Path(candidate)
    return None


def host_platform() -> str:
    """The manylinux tag of this machine's wheels: the layer ships arm64 ones, which an x86_64
    machine cannot load, so the bench builds the same recipe for the machine it runs on."""
    return {"aarch64": "manylinux2014_aarch64", "arm64": "manylinux2014_aarch64"}.get(
        platform.machine(), "manylinux2014_x86_64"
    )


def make(directory: Path, target: str, artifacts: Path, **variables: str) -> None:
    artifacts.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [
            "make",
            "-s",
            "-C",
            str(directory),
            target,
            f"ARTIFACTS_DIR={artifacts}",
            *(f"{k}={v}" for k, v in variables.items()),
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode:
        raise RuntimeError(f"make {target} failed ({proc.returncode}): {proc.stderr[-2000:]}")


@dataclass
class Shipped:
    """One shipped tree: `task` (/var/task), `layer` (/opt/python), `runtime` (the runtime's boto3),
    `python` (the interpreter, a bare venv of the 3.13 found: nothing else on its sys.path)."""

    python: Path
    version: str
    task: Path
    bare_task: Path
    layer: Path
    runtime: Path

    def pythonpath(self, task: Path) -> str:
        return os.pathsep.join(str(p) for p in (task, self.layer, self.runtime))


def _key(*parts: bytes) -> str:
    return hashlib.sha256(b"\0".join(parts)).hexdigest()[:12]


def _cached(name: str, build: bool, builder: Callable[[Path], None]) -> Path | None:
    """`.bench/<name>`, built by `builder` (into a staging directory) on a miss when `build`; older
    builds of the same kind are removed."""
    target = CACHE / name
    if (target / ".complete").exists():
        return target
    if not build:
        return None
    staging = CACHE / f"{name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    builder(staging)
    (staging / ".complete").write_text("built by benchmarks/shipped.py\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    prefix = name.rsplit("-", 1)[0] + "-"
    for stale in CACHE.glob(f"{prefix}*"):
        if stale != target and stale.is_dir() and not stale.name.endswith(".partial"):
            shutil.rmtree(stale, ignore_errors=True)
    return target


def shipped(tmp: Path, build: bool) -> tuple[Shipped | None, str]:
    """The shipped trees under `tmp` (made read-only), and a note on the Python used. The layer and
    the runtime's boto3 are cached under .bench/ (they need PyPI); the code is built each run."""
    found = python313()
    if found is None:
        python, note = (
            Path(PYTHON),
            (
                f"no Python {LAMBDA_PYTHON} on this machine: measured with {_version(PYTHON)} "
                f"({PYTHON}), the recipe run for that version"
            ),
        )
    else:
        python, note = found, f"Python {LAMBDA_PYTHON} ({found})"
    version = _version(str(python)) or LAMBDA_PYTHON
    variables = {"PYTHON313": str(python), "PYTHON_VERSION": version}
    plat = host_platform()
    requirements = (LAYER_DIR / "requirements.txt").read_bytes()
    layer_key = _key(requirements, (LAYER_DIR / "Makefile").read_bytes(), version.encode(), plat.encode())
    layer = _cached(
        f"shipped-layer-{layer_key}",
        build,
        lambda d: make(LAYER_DIR, "build-DepsLayer", d, PLATFORM=plat, **variables),
    )
    from benchmarks.sizes import _boto3_pin

    pin = _boto3_pin()
    runtime = _cached(
        f"shipped-boto3-{_key(pin.encode(), version.encode(), str(python).encode())}",
        build,
        lambda d: _install_runtime_boto3(python, pin, d),
    )
    venv = _cached(
        f"shipped-python-{_key(str(python).encode(), version.encode())}",
        build,
        lambda d: _bare_venv(python, d),
    )
    if layer is None or runtime is None or venv is None:
        return None, "not built (--offline, and nothing cached under .bench/)"
    root = tmp / "shipped"
    task = root / "task"
    make(CODE_DIR, "build-ApiFunction", task, **variables)
    bare_task = root / "bare-task"
    (bare_task / "benchmarks").mkdir(parents=True)
    for name in ("__init__.py", "bare_app.py"):  # the floor's code, shipped the same way
        shutil.copy2(ROOT / "benchmarks" / name, bare_task / "benchmarks" / name)
    _compile(python, bare_task)
    # Copies, made read-only (the cache stays writable, so that it can be pruned).
    shutil.copytree(layer / "python", root / "opt" / "python", symlinks=True)
    shutil.copytree(runtime / "python", root / "runtime", symlinks=True)
    read_only(root)
    return Shipped(
        python=venv / "bin" / "python",
        version=version,
        task=task,
        bare_task=bare_task,
        layer=root / "opt" / "python",
        runtime=root / "runtime",
    ), note


def _install_runtime_boto3(python: Path, pin: str, target: Path) -> None:
    """boto3 (and botocore and their dependencies) as the Lambda runtime provides them: outside the
    layer, after it on sys.path, and byte-compiled (the runtime's own copy is)."""
    proc = subprocess.run(
        [
            *(str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"),
            *("--no-compile", "-t", str(target / "python"), pin),
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode:
        raise RuntimeError(f"pip install {pin} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    _compile(python, target / "python", mode="timestamp")


def _bare_venv(python: Path, target: Path) -> None:
    """A venv of `python` without pip: the same interpreter and standard library, and none of the
    base installation's site-packages (nor their .pth files) on sys.path, as on Lambda."""
    shutil.rmtree(target)
    proc = subprocess.run(
        [str(python), "-m", "venv", "--without-pip", str(target)], capture_output=True, text=True
    )
    if proc.returncode:
        raise RuntimeError(f"python -m venv failed ({proc.returncode}): {proc.stderr[-2000:]}")


def _compile(python: Path, tree: Path, mode: str = "unchecked-hash") -> None:
    proc = subprocess.run(
        [str(python), "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", mode, str(tree)],
        capture_output=True,
        text=True,
    )
    if proc.returncode:
        raise RuntimeError(f"compileall failed ({proc.returncode}): {proc.stdout[-2000:]}")


def read_only(tree: Path) -> None:
    for path in [tree, *tree.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def writable(tree: Path) -> None:
    if not tree.exists():
        return
    for path in [tree, *tree.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


def snapshot(*trees: Path) -> dict[str, float]:
    """Every file and its mtime: nothing may appear or change while the shipped trees are run."""
    return {str(p): p.stat().st_mtime for tree in trees for p in tree.rglob("*")}
