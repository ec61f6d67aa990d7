"""In-process measurements, run in a process of their own: `python -m benchmarks.warm MODE OUT ...`.

`overhead`: per-request time of the gateway's Lambda handler (echo model, zero latency, store off)
and of the bare FastAPI + Mangum route, interleaved round by round so both see the same machine.
`quota`: the same handler on a project without and with quotas, and the quota admission alone.
`rss`: peak RSS of a process after answering N requests with one of the two handlers.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Callable
from typing import Any

from benchmarks.common import LambdaContext, api_event

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def _handler(target: str) -> Handler:
    if target == "bare":
        from benchmarks.bare_app import lambda_handler as bare_handler

        bare: Handler = bare_handler
        return bare
    from handler.entrypoints.http import lambda_handler

    gateway: Handler = lambda_handler
    return gateway


def _time(handler: Handler, event: dict[str, Any], count: int, failures: list[str]) -> list[float]:
    context = LambdaContext()
    clock = time.perf_counter
    samples = []
    for _ in range(count):
        t0 = clock()
        response = handler(event, context)
        samples.append((clock() - t0) * 1000)
        if response.get("statusCode") != 200 and len(failures) < 3:
            failures.append(f"{response.get('statusCode')}: {str(response.get('body'))[:300]}")
    return samples


def overhead(model: str, requests: int, rounds: int, warmup: int) -> dict[str, Any]:
    event = api_event(model, store=False)
    targets = {"gateway": (_handler("gateway"), event), "bare": (_handler("bare"), event)}
    failures: list[str] = []
    for handler, event in targets.values():
        _time(handler, event, warmup, failures)
    samples: dict[str, list[list[float]]] = {name: [] for name in targets}
    for round_ in range(rounds):
        order = list(targets) if round_ % 2 == 0 else list(reversed(targets))
        for name in order:
            handler, event = targets[name]
            samples[name].append(_time(handler, event, requests, failures))
    return {"samples": samples, "failures": failures}


def quota(plain: str, limited: str, requests: int, rounds: int, warmup: int) -> dict[str, Any]:
    """The gateway's handler on a project without quotas and on one with all four, interleaved;
    and the admission alone (`QuotaGate.admit`: the one write on the path to the first token)."""
    from handler.completions.quotas import scope_of
    from handler.config.models import Quotas
    from handler.wiring import default_service

    handler = _handler("gateway")
    targets = {"plain": api_event(plain, store=False), "quota": api_event(limited, store=False)}
    failures: list[str] = []
    for event in targets.values():
        _time(handler, event, warmup, failures)
    samples: dict[str, list[list[float]]] = {name: [] for name in (*targets, "admit")}
    gate = default_service().quotas
    assert gate is not None
    scopes = [
        scope_of(
            "project", limited, Quotas(requests_per_minute=10**9, tokens_per_day=10**12, usd_per_month=10**9)
        )
    ]
    clock = time.perf_counter
    for round_ in range(rounds):
        order = list(targets) if round_ % 2 == 0 else list(reversed(targets))
        for name in order:
            samples[name].append(_time(handler, targets[name], requests, failures))
        admits = []
        for _ in range(requests):
            t0 = clock()
            gate.admit(scopes)
            admits.append((clock() - t0) * 1000)
        samples["admit"].append(admits)
    return {"samples": samples, "failures": failures}


def rss(target: str, model: str, requests: int, store: bool) -> dict[str, Any]:
    failures: list[str] = []
    handler = _handler(target)
    _time(handler, api_event(model, store=store), requests, failures)
    return {"peak_mb": _peak_rss_kb() / 1024, "failures": failures}


def _peak_rss_kb() -> int:
    """VmHWM: this process's peak resident set. Not `ru_maxrss`, which Linux carries over from the
    parent across fork and exec (a small child of a big parent would report the parent's peak)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes (Linux), bytes (macOS)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["overhead", "rss", "quota"])
    parser.add_argument("--limited", default="bench-quota", help="the project with quotas (quota)")
    parser.add_argument("out")
    parser.add_argument("--model", default="bench")
    parser.add_argument("--target", default="gateway", choices=["gateway", "bare"])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--store", action="store_true", help="the requests ask to store (rss)")
    args = parser.parse_args()
    if args.mode == "overhead":
        result = overhead(args.model, args.requests, args.rounds, args.warmup)
    elif args.mode == "quota":
        result = quota(args.model, args.limited, args.requests, args.rounds, args.warmup)
    else:
        result = rss(args.target, args.model, args.requests, args.store)
    with open(args.out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
