"""The build recipes' output: what `sam build` ships is CPython 3.13 bytecode, not only sources.

/opt (layers) and /var/task (function code) are read-only on Lambda, so a module shipped without
its bytecode is compiled again on every cold start. layers/deps/Makefile and src/Makefile (SAM's
makefile build method) byte-compile with a CPython 3.13, hash-based and unchecked (PEP 552). This
runs both recipes as `sam build` does (ARTIFACTS_DIR set; the layer installs from PyPI, so it takes
up to a minute, once per session) and reads what they produced.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from benchmarks.shipped import python313

from tests.infra.sam import ROOT

PYTHON313 = python313()
needs_313 = pytest.mark.skipif(
    PYTHON313 is None,
    reason="no CPython 3.13 on this machine (PYTHON313, python3.13 or python3 on PATH, or pyenv): "
    "the build recipes refuse to build without one (`sam build --use-container` has one)",
)
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "urllib3", "dateutil", "jmespath")
# PEP 552: the pyc's second 32-bit word is a bit field; bit 0 set = hash-based, bit 1 = check_source.
HASH_BASED, CHECK_SOURCE = 0b01, 0b10


def make(directory: Path, target: str, artifacts: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-s", "-C", str(directory), target, f"ARTIFACTS_DIR={artifacts}"]
        + [f"{k}={v}" for k, v in variables.items()],
        capture_output=True,
        text=True,
        timeout=300,
    )


def magic_of(python: Path) -> bytes:
    out = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.util, sys; sys.stdout.write(importlib.util.MAGIC_NUMBER.hex())",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return bytes.fromhex(out)


def assert_ships_bytecode(tree: Path, magic: bytes) -> int:
    """Every .py under `tree` has its `__pycache__/<name>.cpython-313.pyc`, of CPython 3.13's magic
    number, hash-based and unchecked; no other version's bytecode. Returns how many .py files."""
    sources = sorted(tree.rglob("*.py"))
    assert sources, f"no .py under {tree}"
    missing, wrong = [], []
    for source in sources:
        pyc = source.parent / "__pycache__" / f"{source.stem}.cpython-313.pyc"
        if not pyc.is_file():
            missing.append(source.relative_to(tree))
            continue
        header = pyc.read_bytes()[:16]
        flags = int.from_bytes(header[4:8], "little")
        if header[:4] != magic or flags != HASH_BASED:  # not CHECK_SOURCE: unchecked
            wrong.append((source.relative_to(tree), header[:4].hex(), bin(flags)))
    assert not missing, f"{len(missing)} of {len(sources)} .py files have no cpython-313 pyc: {missing[:10]}"
    assert not wrong, f"pycs of another Python or not unchecked-hash: {wrong[:10]}"
    others = [p for p in tree.rglob("*.pyc") if ".cpython-313." not in p.name]
    assert not others, f"bytecode of other Pythons shipped: {others[:10]}"
    return len(sources)


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    assert PYTHON313 is not None
    artifacts = tmp_path_factory.mktemp("DepsLayer")
    proc = make(ROOT / "layers" / "deps", "build-DepsLayer", artifacts, PYTHON313=str(PYTHON313))
    assert proc.returncode == 0, proc.stderr[-3000:]
    yield artifacts / "python"


@needs_313
@pytest.mark.timeout(300)
def test_every_module_of_the_layer_ships_its_cpython313_bytecode(layer: Path) -> None:
    assert PYTHON313 is not None
    assert assert_ships_bytecode(layer, magic_of(PYTHON313)) > 500
    # The recipe's other half: what the python3.13 runtime provides is not in the layer.
    assert not [name for name in RUNTIME_PROVIDED if (layer / name).exists()]
    assert (layer / "fastapi").is_dir() and (layer / "pydantic_core").is_dir()


@needs_313
def test_the_layers_bytecode_is_what_python313_imports(layer: Path) -> None:
    """Bytecode writing off, as on Lambda: the module is loaded from its pyc, not compiled. (A
    pure-Python package: the layer's compiled extensions are arm64.) The pyc records the path the
    source has on Lambda, so the bytes do not depend on where the layer was built."""
    assert PYTHON313 is not None
    pyc = layer / "h11" / "__pycache__" / "_connection.cpython-313.pyc"
    proc = subprocess.run(
        [
            str(PYTHON313),
            "-B",
            "-v",
            "-c",
            "import h11._connection, marshal, sys; "
            "print(marshal.loads(open(sys.argv[1], 'rb').read()[16:]).co_filename)",
            str(pyc),
        ],
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(layer), "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"code object from '{pyc}'" in proc.stderr
    assert proc.stdout.strip() == "/opt/python/h11/_connection.py"


@needs_313
def test_function_code_ships_its_cpython313_bytecode(tmp_path: Path) -> None:
    assert PYTHON313 is not None
    proc = make(ROOT / "src", "build-ApiFunction", tmp_path, PYTHON313=str(PYTHON313))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["handler", "run.sh"]  # no Makefile, no egg-info
    assert os.access(tmp_path / "run.sh", os.X_OK)  # ChatFunction's entry point
    shipped = assert_ships_bytecode(tmp_path / "handler", magic_of(PYTHON313))
    assert shipped == len(list((ROOT / "src" / "handler").rglob("*.py")))


def test_recipes_refuse_to_build_without_python313(tmp_path: Path) -> None:
    """No 3.13, no build: a layer or code without bytecode would compile on every cold start."""
    for directory, target in (
        (ROOT / "layers" / "deps", "build-DepsLayer"),
        (ROOT / "src", "build-ApiFunction"),
    ):
        proc = make(directory, target, tmp_path / target, PYTHON313="false")
        assert proc.returncode != 0
        assert "no Python 3.13 found" in proc.stderr and "sam build --use-container" in proc.stderr
        assert not (tmp_path / target).exists()


def test_pyc_flag_bits_are_read_the_pep552_way(tmp_path: Path) -> None:
    """The flags checked above, against this interpreter's own py_compile (any version has PEP 552)."""
    import py_compile

    source = tmp_path / "m.py"
    source.write_text("x = 1\n")
    expected = {
        py_compile.PycInvalidationMode.TIMESTAMP: 0,
        py_compile.PycInvalidationMode.CHECKED_HASH: HASH_BASED | CHECK_SOURCE,
        py_compile.PycInvalidationMode.UNCHECKED_HASH: HASH_BASED,
    }
    for mode, flags in expected.items():
        pyc = Path(
            py_compile.compile(str(source), cfile=str(tmp_path / f"{mode.name}.pyc"), invalidation_mode=mode)
        )
        assert pyc.read_bytes()[:4] == importlib.util.MAGIC_NUMBER
        assert int.from_bytes(pyc.read_bytes()[4:8], "little") == flags, mode
