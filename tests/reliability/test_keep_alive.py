"""Issue #11 C12: uvicorn keeps idle connections longer than its callers reuse them.

uvicorn's default `--timeout-keep-alive` is 5 s (https://www.uvicorn.org/settings/#timeouts). The
Lambda Web Adapter and common HTTP clients keep idle pooled connections for 60-90 s; when uvicorn
closes one first, the next request on it dies as a connection reset. Both ways the gateway runs
uvicorn (src/run.sh under the adapter, `make dev`) must say a longer keep-alive, read the way
uvicorn itself reads it (its click command line, its Config).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import uvicorn
from uvicorn.main import main as uvicorn_cli

from gatewayctl.local.dev import uvicorn_options
from handler.settings import UVICORN_KEEP_ALIVE_S

ROOT = Path(__file__).resolve().parents[2]
# Longer than any client idle timeout we know of (the adapter's pool, httpx, AWS SDKs: <= 90 s).
CLIENT_IDLE_S = 90


def _run_sh_uvicorn_args() -> list[str]:
    text = (ROOT / "src" / "run.sh").read_text(encoding="utf-8")
    command = re.search(r"^exec python -m uvicorn (.*?)(?<!\\)$", text, re.MULTILINE | re.DOTALL)
    assert command, "run.sh must exec uvicorn"
    joined = re.sub(r"\\\n", " ", text[command.start(1) :])
    line = joined.splitlines()[0]
    return [a for a in shlex.split(line.replace('"${PORT:-8080}"', "8080"))]


def test_run_sh_keeps_idle_connections_longer_than_clients() -> None:
    context = uvicorn_cli.make_context("uvicorn", _run_sh_uvicorn_args())
    assert context.params["timeout_keep_alive"] == UVICORN_KEEP_ALIVE_S
    assert context.params["timeout_keep_alive"] > CLIENT_IDLE_S


def test_dev_server_keeps_idle_connections_longer_than_clients() -> None:
    config = uvicorn.Config("handler.entrypoints.asgi:app", **uvicorn_options(8000))
    assert config.timeout_keep_alive == UVICORN_KEEP_ALIVE_S > CLIENT_IDLE_S
