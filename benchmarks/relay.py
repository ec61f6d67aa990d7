"""HTTP overhead through uvicorn: the gateway in front of the fast fake upstream vs the upstream alone.

Both sides are measured by the same client (http.client, keep-alive), interleaved round by round.
Time to first byte is from sending the request to the first byte of the response body (for a stream,
the first SSE event). Relay throughput is SSE events per second from the first body byte to the last.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

from benchmarks.common import DEV_KEY, PYTHON, ROOT, child_env, free_port, stop, wait_port
from benchmarks.emulation import RELAY, Emulation

MESSAGES = [{"role": "user", "content": "Hello, benchmark! How fast is this?"}]


@dataclass
class Exchange:
    status: int
    ttfb_ms: float
    events: int
    body_s: float  # first body byte to last
    excerpt: bytes


class Client:
    """One keep-alive connection to 127.0.0.1:`port`."""

    def __init__(self, port: int, path: str, headers: dict[str, str]) -> None:
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self._path = path
        self._headers = {"Content-Type": "application/json", **headers}

    def post(self, body: dict[str, Any]) -> Exchange:
        data = json.dumps(body).encode()
        clock = time.perf_counter
        t0 = clock()
        self._conn.request("POST", self._path, body=data, headers=self._headers)
        response = self._conn.getresponse()
        first = response.read1(65536)
        t_first = clock()
        parts = [first]
        while True:
            piece = response.read1(65536)
            if not piece:
                break
            parts.append(piece)
        parts.append(response.read())  # b"": marks a Content-Length response done, freeing the connection
        t_end = clock()
        payload = b"".join(parts)
        events = payload.count(b"data: ") - payload.count(b"data: [DONE]")
        return Exchange(response.status, (t_first - t0) * 1000, events, t_end - t_first, payload[:300])

    def close(self) -> None:
        self._conn.close()


@dataclass
class RelayResult:
    ttfb: dict[str, list[list[float]]] = field(default_factory=dict)  # kind -> rounds of ms
    throughput: dict[str, list[float]] = field(default_factory=dict)  # side -> events/s per run
    events: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # kind -> why it could not be measured


class Relay:
    """`with Relay(aws) as relay:` the fast upstream and the gateway under uvicorn, both started."""

    def __init__(self, aws: Emulation, long_chunks: int, python: str = PYTHON) -> None:
        self.aws = aws
        self.python = python  # the gateway's interpreter
        self.long_chunks = long_chunks
        self.procs: list[subprocess.Popen[bytes]] = []
        self.upstream_port = 0
        self.gateway_port = 0

    def __enter__(self) -> Relay:
        try:
            self.upstream_port = free_port()
            upstream = subprocess.Popen(
                [PYTHON, "-m", "benchmarks.upstream", str(self.upstream_port)],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
            )
            self.procs.append(upstream)
            wait_port(self.upstream_port, upstream)
            self.aws.put_relay_project(f"http://127.0.0.1:{self.upstream_port}/v1", self.long_chunks)
            self.gateway_port = free_port()
            # As src/run.sh starts it on Lambda (minus the host: loopback here).
            gateway = subprocess.Popen(
                [
                    self.python,
                    "-m",
                    "uvicorn",
                    "handler.entrypoints.asgi:app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.gateway_port),
                    "--no-access-log",
                    "--log-level",
                    "warning",
                ],
                cwd=ROOT,
                env=child_env({**self.aws.env, "PYTHONPATH": str(ROOT / "src")}),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            self.procs.append(gateway)
            wait_port(self.gateway_port, gateway)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in reversed(self.procs):
            stop(proc)

    def gateway_stderr(self) -> str:
        gateway = self.procs[-1] if len(self.procs) == 2 else None
        if gateway is None or gateway.stderr is None or gateway.poll() is None:
            return ""
        return gateway.stderr.read().decode(errors="replace")[-2000:]

    def direct(self) -> Client:
        return Client(self.upstream_port, "/v1/chat/completions", {})

    def gateway(self) -> Client:
        return Client(self.gateway_port, "/api/v1/chat/completions", {"Authorization": f"Bearer {DEV_KEY}"})

    def measure(self, requests: int, rounds: int, long_runs: int) -> RelayResult:
        result = RelayResult()
        direct, gateway = self.direct(), self.gateway()
        kinds: dict[tuple[str, bool], tuple[Client, dict[str, Any]]] = {
            ("direct", False): (direct, {"model": "bench-8", "messages": MESSAGES}),
            ("gateway", False): (gateway, {"model": f"{RELAY}/short", "messages": MESSAGES}),
            ("direct", True): (direct, {"model": "bench-8", "messages": MESSAGES, "stream": True}),
            ("gateway", True): (gateway, {"model": f"{RELAY}/short", "messages": MESSAGES, "stream": True}),
        }
        usable = {}
        for key, (client, body) in kinds.items():  # warm-up; also finds what cannot be measured yet
            try:
                for _ in range(5):
                    exchange = client.post(body)
                    if exchange.status != 200:
                        raise RuntimeError(
                            f"HTTP {exchange.status}: {exchange.excerpt.decode(errors='replace')}"
                        )
                usable[key] = True
            except Exception as exc:
                result.errors[_name(*key)] = str(exc)[:300]
                usable[key] = False
                client.close()  # a failed exchange may leave the connection unusable; it reopens
        for key in kinds:
            result.ttfb[_name(*key)] = []
        for round_ in range(rounds):
            order = list(kinds) if round_ % 2 == 0 else list(reversed(kinds))
            for key in order:
                if not usable[key]:
                    continue
                client, body = kinds[key]
                result.ttfb[_name(*key)].append([client.post(body).ttfb_ms for _ in range(requests)])
        long_bodies: dict[str, tuple[Client, dict[str, Any]]] = {
            "direct": (direct, {"model": f"bench-{self.long_chunks}", "messages": MESSAGES, "stream": True}),
            "gateway": (gateway, {"model": f"{RELAY}/long", "messages": MESSAGES, "stream": True}),
        }
        for side in long_bodies:
            result.throughput[side] = []
        if usable[("gateway", True)] and usable[("direct", True)]:
            for _ in range(long_runs):
                for side, (client, body) in long_bodies.items():
                    exchange = client.post(body)
                    if exchange.status != 200 or exchange.body_s <= 0:
                        result.errors[f"throughput {side}"] = f"HTTP {exchange.status}"
                        continue
                    result.events[side] = exchange.events
                    result.throughput[side].append(exchange.events / exchange.body_s)
        direct.close()
        gateway.close()
        return result


def _name(side: str, stream: bool) -> str:
    return f"{side} {'stream' if stream else 'json'}"
