"""Shared pieces: statistics, the API Gateway event, a Lambda context, child processes and ports."""

from __future__ import annotations

import copy
import json
import math
import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EVENT_FILE = ROOT / "events" / "chat_completion.json"
DEV_KEY = "sk-local-dev"
PYTHON = sys.executable


# -- statistics -------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): an observed value, never an interpolation."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


@dataclass
class Summary:
    """Median and p99 of every sample, and the spread (min..max) of the per-round medians."""

    median: float
    p99: float
    low: float
    high: float
    count: int

    @classmethod
    def of(cls, rounds: Sequence[Sequence[float]]) -> Summary:
        samples = [v for r in rounds for v in r]
        per_round = [median(r) for r in rounds if r]
        if len(per_round) < 2:  # one round (or one sample per round): the spread is the samples'
            per_round = samples
        return cls(median(samples), percentile(samples, 99), min(per_round), max(per_round), len(samples))

    @classmethod
    def runs(cls, samples: Sequence[float]) -> Summary:
        """Each sample a run of its own (cold starts): the spread is min..max of the runs."""
        return cls(median(samples), percentile(samples, 99), min(samples), max(samples), len(samples))


# -- the API event ---------------------------------------------------------------------------------


def _built_event() -> dict[str, Any]:
    """An API Gateway REST (v1) proxy event for POST /api/v1/chat/completions."""
    return {
        "resource": "/api/v1/chat/completions",
        "path": "/api/v1/chat/completions",
        "httpMethod": "POST",
        "headers": {"Content-Type": "application/json", "Host": "api.example.com"},
        "multiValueHeaders": {"Content-Type": ["application/json"], "Host": ["api.example.com"]},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/api/v1/chat/completions",
            "httpMethod": "POST",
            "path": "/dev/api/v1/chat/completions",
            "stage": "dev",
            "requestId": "bench-request",
            "accountId": "123456789012",
            "apiId": "bench",
            "protocol": "HTTP/1.1",
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "bench"},
            "requestTimeEpoch": 1_700_000_000_000,
        },
        "body": json.dumps(
            {
                "model": "demo",
                "messages": [{"role": "user", "content": "Hello, benchmark! How fast is this?"}],
            }
        ),
        "isBase64Encoded": False,
    }


def api_event(model: str, *, store: bool, path: str = "/api/v1/chat/completions") -> dict[str, Any]:
    """events/chat_completion.json (else an equivalent event), aimed at `model` with the dev key,
    storing or not as asked (the request's `store` overrides the project's)."""
    event = json.loads(EVENT_FILE.read_text()) if EVENT_FILE.exists() else _built_event()
    event = copy.deepcopy(event)
    body = json.loads(event.get("body") or "{}")
    body["model"] = model
    body["store"] = store
    body.pop("stream", None)
    event["body"] = json.dumps(body)
    event["isBase64Encoded"] = False
    event["path"] = path
    auth = f"Bearer {DEV_KEY}"
    headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "authorization"}
    headers["Authorization"] = auth
    event["headers"] = headers
    multi = {k: v for k, v in (event.get("multiValueHeaders") or {}).items() if k.lower() != "authorization"}
    multi["Authorization"] = [auth]
    event["multiValueHeaders"] = multi
    return event


def LambdaContext() -> Any:
    """What the Lambda runtime passes as `context` (Powertools reads these)."""
    from gatewayctl.local.context import LambdaContext as Context

    return Context("chat-gateway-ApiFunction", timeout_ms=30_000)


# -- processes and ports ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_port(port: int, proc: subprocess.Popen[Any] | None = None, timeout: float = 30.0) -> None:
    """Until something accepts connections on 127.0.0.1:`port` (or the process died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """A clean environment for the function's process: no ambient AWS settings leak in."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(extra)
    return env


def stop(proc: subprocess.Popen[Any] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
