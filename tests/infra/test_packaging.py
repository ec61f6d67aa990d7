"""What gets deployed besides the template: the dependencies layer, the function code (src/, and
nothing only developers run) and ChatFunction's `run.sh`.

The last test starts `src/run.sh` the way the AWS Lambda Web Adapter does (PORT in the environment,
readiness polled on /health), against AWS emulated by a moto server, and reads a streamed chat
completion from it.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import TEST_CONFIG_DIR
from tests.infra.sam import ROOT

SRC = ROOT / "src"  # every function's CodeUri
TOOLS = ROOT / "tools"  # the dev and operator tooling, installed by `pip install -e '.[dev]'` only
RUN_SH = ROOT / "src" / "run.sh"
LAYER_REQUIREMENTS = ROOT / "layers" / "deps" / "requirements.txt"
# The Lambda python3.13 runtime ships these; the layer must not carry (or shadow) them.
RUNTIME_PROVIDED = {"boto3", "botocore"}
# Modules the Lambda Python runtime itself provides (imported only when present): SnapStart's
# runtime hooks (https://docs.aws.amazon.com/lambda/latest/dg/snapstart-runtime-hooks-python.html).
LAMBDA_RUNTIME_MODULES = ("snapshot_restore_py",)


def pins(requirements: list[str]) -> dict[str, str]:
    """name -> exact version, for requirement strings that must all be `name==version`."""
    pinned: dict[str, str] = {}
    for line in requirements:
        requirement = Requirement(line)
        [spec] = requirement.specifier
        assert spec.operator == "==", f"{line!r} is not pinned exactly"
        assert not requirement.extras and requirement.marker is None, f"{line!r}: keep layer lines plain"
        pinned[canonicalize_name(requirement.name)] = spec.version
    return pinned


def layer_lines() -> list[str]:
    lines = (
        line.split("#", 1)[0].strip() for line in LAYER_REQUIREMENTS.read_text(encoding="utf-8").splitlines()
    )
    return [line for line in lines if line]


# ------------------------------------------------------------------------------------------------
# The dependencies layer
# ------------------------------------------------------------------------------------------------
@pytest.mark.unit
def test_layer_requirements_are_the_project_dependencies_minus_the_runtimes_own() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    expected = {
        name: version
        for name, version in pins(project["dependencies"]).items()
        if name not in RUNTIME_PROVIDED
    }
    assert pins(layer_lines()) == expected


@pytest.mark.unit
def test_layer_says_why_boto3_is_left_out() -> None:
    text = LAYER_REQUIREMENTS.read_text(encoding="utf-8")
    comments = " ".join(line for line in text.splitlines() if line.startswith("#"))
    assert "boto3" in comments and "runtime" in comments
    assert not RUNTIME_PROVIDED & set(pins(layer_lines()))


@pytest.mark.unit
def test_layer_holds_third_party_packages_only() -> None:
    layer = ROOT / "layers"
    assert not list(layer.rglob("*.py")), "our code lives in src/, the layer is built from requirements.txt"


# ------------------------------------------------------------------------------------------------
# The function code: src/, without the tooling
# ------------------------------------------------------------------------------------------------
def module_imports(path: Path) -> set[str]:
    """The top-level names `path` imports when it runs (relative imports and `if TYPE_CHECKING:`
    blocks left out: the first are our own, the second never run)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
    return found


def runtime_distributions() -> set[str]:
    """The [project] dependencies, what they require in turn (no extras), and the runtime's boto3."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pending = [*project["dependencies"], *RUNTIME_PROVIDED]
    seen: set[str] = set()
    while pending:
        requirement = Requirement(pending.pop())
        name = canonicalize_name(requirement.name)
        if name in seen or (
            requirement.marker is not None and not requirement.marker.evaluate({"extra": ""})
        ):
            continue
        seen.add(name)
        pending.extend(importlib.metadata.requires(name) or [])
    return seen


@pytest.mark.unit
def test_function_code_is_the_handler_package_only() -> None:
    packages = sorted(p.name for p in SRC.iterdir() if (p / "__init__.py").is_file())
    assert packages == ["handler"]
    handler = SRC / "handler"
    for tooling in ("local", "cli", "cli.py", "gatewayctl"):
        assert not (handler / tooling).exists(), (
            f"src/handler/{tooling} ships in every function: tools/ is for it"
        )
    assert (TOOLS / "gatewayctl" / "__init__.py").is_file()
    assert (TOOLS / "gatewayctl" / "local" / "dev.py").is_file()


@pytest.mark.unit
def test_function_code_imports_only_the_runtime_dependencies() -> None:
    """Every module in src/ imports the standard library, `handler`, or a package the layer (or the
    Lambda runtime) holds: never moto, tqdm, pytest or `gatewayctl`, which exist only in dev."""
    modules = sorted(SRC.rglob("*.py"))
    assert modules, f"no modules under {SRC}"
    installed = importlib.metadata.packages_distributions()
    allowed = runtime_distributions()
    assert {"fastapi", "pydantic", "starlette"} <= allowed  # the closure follows requirements
    stray: dict[str, list[str]] = {}
    for path in modules:
        for name in module_imports(path):
            if name in sys.stdlib_module_names or name in ("handler", *LAMBDA_RUNTIME_MODULES):
                continue
            dists = {canonicalize_name(d) for d in installed.get(name, [])}
            if name == "gatewayctl" or not dists & allowed:
                stray.setdefault(name, []).append(str(path.relative_to(ROOT)))
    assert stray == {}, "imported by the function code, but not deployed with it"


@pytest.mark.unit
def test_dev_tooling_is_not_a_runtime_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = set(pins(project["dependencies"]))
    assert not runtime & {"moto", "tqdm", "pytest", "pydantic-settings"}
    assert {"moto", "tqdm"} <= {
        canonicalize_name(Requirement(r).name) for r in project["optional-dependencies"]["dev"]
    }


# ------------------------------------------------------------------------------------------------
# run.sh
# ------------------------------------------------------------------------------------------------
def test_run_sh_is_executable() -> None:
    assert RUN_SH.read_text(encoding="utf-8").startswith("#!/bin/bash\n")
    assert os.access(RUN_SH, os.X_OK), "chmod +x src/run.sh (the adapter executes it directly)"
    git = shutil.which("git")
    if git is None:
        return
    listed = subprocess.run(
        [git, "ls-files", "--stage", "--", "src/run.sh"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if listed.returncode == 0 and listed.stdout:  # once it is tracked, git must record the mode too
        assert listed.stdout.split()[0] == "100755", listed.stdout


def test_run_sh_execs_uvicorn_on_the_asgi_app() -> None:
    text = RUN_SH.read_text(encoding="utf-8")
    subprocess.run(["bash", "-n", str(RUN_SH)], check=True)
    # `exec`: uvicorn replaces the shell, so Lambda's SIGTERM reaches it.
    assert re.search(r"^exec python -m uvicorn handler\.entrypoints\.asgi:app\b", text, re.MULTILINE)
    assert '--port "${PORT:-8080}"' in text
    assert "/opt/python" in text  # the layer's packages


# ------------------------------------------------------------------------------------------------
# run.sh as the Lambda Web Adapter starts it
# ------------------------------------------------------------------------------------------------
READY_WITHIN_S = 30.0
DEV_KEY = "sk-adapter-test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Started:
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextmanager
def start_run_sh(workdir: Path, extra_env: dict[str, str]) -> Iterator[Started]:
    """`src/run.sh` started as the adapter starts it: the function's environment, PORT, and the
    readiness path polled (bounded) until it answers."""
    port = free_port()
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(workdir),
        "LANG": "C.UTF-8",
        # What the Lambda environment and the adapter provide.
        "LAMBDA_TASK_ROOT": str(ROOT / "src"),
        "PYTHONPATH": str(ROOT / "src"),
        "PORT": str(port),
        "AWS_LWA_INVOKE_MODE": "response_stream",
        "AWS_LWA_READINESS_CHECK_PATH": "/health",
        "POWERTOOLS_TRACE_DISABLED": "true",
        **extra_env,
    }
    log_path = workdir / "run.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(RUN_SH)], env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        started = Started(process, f"http://127.0.0.1:{port}", log_path)
        try:
            wait_until_ready(started)
            yield started
        finally:
            # The whole session: if run.sh did not exec, uvicorn would be a child outliving the shell.
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
            sys.stderr.write(started.output()[-4000:])  # shown by pytest when a test fails


def wait_until_ready(started: Started) -> None:
    import httpx

    deadline = time.monotonic() + READY_WITHIN_S
    while time.monotonic() < deadline:
        assert started.process.poll() is None, (
            f"run.sh exited ({started.process.returncode}) before it was ready"
        )
        try:
            if httpx.get(f"{started.base_url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    pytest.fail(f"GET /health did not answer 200 within {READY_WITHIN_S} s")


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Started]:
    """run.sh against a moto server on 127.0.0.1 holding the stack's resources and the suite's demo
    project (loaded by `gatewayctl.local.bootstrap`), shared by the tests below."""
    from moto.server import ThreadedMotoServer

    from gatewayctl.local.bootstrap import bootstrap

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        with pytest.MonkeyPatch.context() as mp:
            # bootstrap() sets AWS_ENDPOINT_URL in this process; put it back afterwards.
            mp.delenv("AWS_ENDPOINT_URL", raising=False)
            aws_env = bootstrap(f"http://127.0.0.1:{port}", TEST_CONFIG_DIR, apply_env=False)
        function_env = {
            **aws_env,  # TABLE_NAME, CONFIG_PREFIX, BUCKET_NAME, queue URLs, endpoint, dummy credentials
            "CONFIG_MAX_AGE_S": "60",
            "LOG_CONTENT": "false",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            # A known key instead of the key store: the dev mode that `make dev` uses.
            "AUTH_MODE": "dev",
            "DEV_API_KEY": DEV_KEY,
        }
        with start_run_sh(tmp_path_factory.mktemp("run_sh"), function_env) as started:
            yield started
    finally:
        server.stop()


def chat(base_url: str, **fields: Any) -> dict[str, Any]:
    return {
        "url": f"{base_url}/api/v1/chat/completions",
        "headers": {"Authorization": f"Bearer {DEV_KEY}"},
        "json": {
            "model": "demo",
            "messages": [{"role": "user", "content": "Through the adapter, please"}],
            **fields,
        },
        "timeout": 20,
    }


def read_sse(lines: Iterator[str]) -> list[Any]:
    """`data:` payloads up to and including [DONE] (kept as the string "[DONE]")."""
    events: list[Any] = []
    for line in lines:
        if not line:
            continue
        assert line.startswith("data: "), f"unexpected SSE line {line!r}"
        payload = line.removeprefix("data: ")
        if payload == "[DONE]":
            events.append(payload)
            break
        events.append(json.loads(payload))
    return events


def test_run_sh_becomes_uvicorn(gateway: Started) -> None:
    """exec: the process the adapter started *is* uvicorn now, not a shell waiting on it."""
    cmdline = Path(f"/proc/{gateway.process.pid}/cmdline")
    if not cmdline.exists():
        pytest.skip("no /proc on this platform")
    argv = cmdline.read_bytes().split(b"\0")
    assert argv[:4] == [b"python", b"-m", b"uvicorn", b"handler.entrypoints.asgi:app"], argv


def test_run_sh_serves_a_buffered_completion(gateway: Started) -> None:
    import httpx

    response = httpx.post(**chat(gateway.base_url))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"]


def test_run_sh_streams_a_completion(gateway: Started) -> None:
    import httpx

    request = chat(gateway.base_url, stream=True, stream_options={"include_usage": True})
    with httpx.stream("POST", **request) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        events = read_sse(response.iter_lines())

    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    content_chunks = [c for c in chunks if c["choices"]]
    assert len(content_chunks) >= 2, "a stream, not one buffered answer"
    assert "".join(c["choices"][0]["delta"]["content"] for c in content_chunks).strip()
    assert content_chunks[-1]["choices"][0]["finish_reason"] in {"stop", "length"}
    usage = [c for c in chunks if not c["choices"]]
    assert len(usage) == 1 and usage[0]["usage"]["completion_tokens"] > 0


def test_sigterm_reaches_uvicorn_and_it_shuts_down_gracefully(tmp_path: Path) -> None:
    """Lambda stops an environment with SIGTERM. Without `exec` the shell would get it and uvicorn
    would be killed without shutting down. (No AWS needed: the app starts without calling it.)"""
    with start_run_sh(tmp_path, {"AUTH_MODE": "dev", "DEV_API_KEY": DEV_KEY}) as started:
        started.process.send_signal(signal.SIGTERM)
        # uvicorn re-raises the signal once it has shut down, hence -SIGTERM rather than 0.
        assert started.process.wait(timeout=10) in {0, -signal.SIGTERM}
        assert "Application shutdown complete" in started.output()
