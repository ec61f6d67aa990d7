"""The HTTP hot path, side by side in one run: the gateway, a bare FastAPI route, LiteLLM's proxy.

Each server runs under uvicorn in a process of its own on 127.0.0.1 and gets the same work: one
short chat completion (the echo model, store off, for the gateway; `mock_response` for LiteLLM),
JSON and streamed, from one keep-alive `http.client` connection per server, interleaved round by
round so that they share the machine's noise. JSON: time to the whole response. Streamed: time to
the first SSE event that carries content ("time to first token" as a client sees it).

LiteLLM runs from its own venv (`make bench-peers` builds it; `BENCH_LITELLM` names its
`litellm` executable), never from the project's; without it the peer rows say so.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import DEV_KEY, PYTHON, ROOT, child_env, free_port, stop, wait_port
from benchmarks.emulation import NO_STORE, Emulation

TEXT = "Hello, benchmark! How fast is this?"
MESSAGES = [{"role": "user", "content": TEXT}]
PATH = "/api/v1/chat/completions"
_CONTENT = re.compile(rb'"content":\s*"[^"]')
LITELLM_DEFAULT = Path("/work/.venv-peers/bin/litellm")
SIDES = ("gateway", "bare", "litellm")
LITELLM_KEY = "sk-bench-0123456789abcdef0123456789abcdef"
QUIET = ("--no-access-log", "--log-level", "warning", "--timeout-keep-alive", "120")


def litellm_executable() -> Path | None:
    """LiteLLM's proxy CLI from its own venv: `BENCH_LITELLM`, else `.venv-peers/`, if installed."""
    named = os.environ.get("BENCH_LITELLM")
    for candidate in (Path(named) if named else None, ROOT / ".venv-peers/bin/litellm", LITELLM_DEFAULT):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


class Client:
    """One keep-alive connection; `post` returns ms to the whole response, or to first content."""

    def __init__(self, port: int, path: str, headers: dict[str, str]) -> None:
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self._path = path
        self._headers = {"Content-Type": "application/json", **headers}

    def post(self, body: dict[str, Any]) -> float:
        try:
            return self._post(body)
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            # The server closed the idle keep-alive connection: once more on a new one (the
            # failed attempt is not a sample).
            self._conn.close()
            return self._post(body)

    def _post(self, body: dict[str, Any]) -> float:
        data = json.dumps(body).encode()
        clock = time.perf_counter
        t0 = clock()
        self._conn.request("POST", self._path, body=data, headers=self._headers)
        response = self._conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {response.read()[:300]!r}")
        if not body.get("stream"):
            response.read()
            return (clock() - t0) * 1000
        seen, at = b"", 0.0
        while True:
            piece = response.read1(65536)
            if not piece:
                break
            if not at:
                seen += piece
                if _CONTENT.search(seen):
                    at = clock()
        response.read()
        if not at:
            raise RuntimeError(f"no content in the stream: {seen[:300]!r}")
        return (at - t0) * 1000

    def close(self) -> None:
        self._conn.close()


@dataclass
class HotResult:
    samples: dict[str, list[list[float]]] = field(default_factory=dict)  # "side json|stream" -> rounds
    errors: dict[str, str] = field(default_factory=dict)  # side -> why it could not be measured


class HotPath:
    """`with HotPath(aws) as hot:` the three servers started (LiteLLM only if installed)."""

    def __init__(self, aws: Emulation, python: str = PYTHON, tmp: Path | None = None) -> None:
        self.aws = aws
        self.python = python
        self.tmp = tmp or Path("/tmp")
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.ports: dict[str, int] = {}
        self.errors: dict[str, str] = {}

    def _uvicorn(self, side: str, target: str, env: dict[str, str]) -> None:
        port = free_port()
        proc = subprocess.Popen(
            [self.python, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port), *QUIET],
            cwd=ROOT,
            env=child_env(env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.procs[side], self.ports[side] = proc, port
        wait_port(port, proc)

    def _litellm(self) -> None:
        exe = litellm_executable()
        if exe is None:
            self.errors["litellm"] = "LiteLLM not installed (make bench-peers)"
            return
        config = self.tmp / "litellm.yaml"
        config.write_text(
            json.dumps(  # JSON is YAML
                {
                    "model_list": [
                        {
                            "model_name": NO_STORE,
                            "litellm_params": {"model": "openai/echo", "mock_response": TEXT},
                        }
                    ],
                    "litellm_settings": {"telemetry": False, "set_verbose": False},
                    # It refuses to start without one; a master key is checked by comparison, as
                    # the gateway's dev key is (no database).
                    "general_settings": {"master_key": LITELLM_KEY},
                }
            )
        )
        port = free_port()
        env = {"LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False", "PATH": os.environ.get("PATH", "")}
        proc = subprocess.Popen(
            [
                str(exe),
                "--config",
                str(config),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--keepalive_timeout",
                "120",
            ],
            cwd=self.tmp,
            env={**child_env(env), "HOME": str(self.tmp)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.procs["litellm"], self.ports["litellm"] = proc, port
        try:
            wait_port(port, proc, timeout=180)
        except (RuntimeError, TimeoutError) as exc:
            self.errors["litellm"] = str(exc)[:200]

    def __enter__(self) -> HotPath:
        try:
            self._uvicorn(
                "gateway", "handler.entrypoints.asgi:app", {**self.aws.env, "PYTHONPATH": str(ROOT / "src")}
            )
            self._uvicorn("bare", "benchmarks.bare_http:app", {"PYTHONPATH": str(ROOT)})
            self._litellm()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in reversed(list(self.procs.values())):
            stop(proc)

    def _client(self, side: str) -> Client:
        keys = {"gateway": DEV_KEY, "litellm": LITELLM_KEY}
        auth = {"Authorization": f"Bearer {keys[side]}"} if side in keys else {}
        return Client(self.ports[side], PATH if side != "litellm" else "/v1/chat/completions", auth)

    def measure(self, requests: int, rounds: int) -> HotResult:
        result = HotResult(errors=dict(self.errors))
        clients = {
            side: self._client(side) for side in SIDES if side in self.ports and side not in self.errors
        }
        kinds = [(side, stream) for side in clients for stream in (False, True)]
        for side, stream in list(kinds):  # warm-up; also finds what cannot be measured
            body = _body(side, stream)
            try:
                for _ in range(10):
                    clients[side].post(body)
            except Exception as exc:
                result.errors[side] = str(exc)[:200]
                kinds = [k for k in kinds if k[0] != side]
        for side, stream in kinds:
            result.samples[_name(side, stream)] = []
        for round_ in range(rounds):
            order = kinds if round_ % 2 == 0 else list(reversed(kinds))
            for side, stream in order:
                client, body = clients[side], _body(side, stream)
                result.samples[_name(side, stream)].append([client.post(body) for _ in range(requests)])
        for client in clients.values():
            client.close()
        return result


def _body(side: str, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"model": NO_STORE, "messages": MESSAGES, "stream": stream}
    return body


def _name(side: str, stream: bool) -> str:
    return f"{side} {'stream' if stream else 'json'}"
