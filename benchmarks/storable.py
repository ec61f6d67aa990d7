"""Micro-benchmark: what the storability pass (contract/storable.py) adds to request validation.

    PYTHONPATH=src .venv/bin/python -m benchmarks.storable

Validates the same bodies (parsed JSON, as FastAPI hands them over) with `ChatRequest.model_validate`
with the pass and with it switched off, in alternating rounds so the machine's noise hits both; prints
the median per validation of each and their ratio. Timing is never asserted anywhere.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

SMALL: dict[str, Any] = {"model": "demo", "messages": [{"role": "user", "content": "Hello there!"}]}
TYPICAL: dict[str, Any] = {
    "model": "demo/echo",
    "messages": [
        {"role": "system", "content": "You are terse."},
        *(
            {"role": "user" if i % 2 == 0 else "assistant", "content": "Ünïcode text " * 20}
            for i in range(10)
        ),
    ],
    "labels": {"team": "docs", "env": "prod"},
    "tags": ["beta", "ab"],
    "user": "u-123",
    "temperature": 0.3,
    "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
    "system_prompt_args": {"persona": "a pirate", "n": 3},
}
LARGE: dict[str, Any] = {
    "model": "demo",
    "messages": [{"role": "user", "content": "word " * 2000} for _ in range(100)],
}


def per_call_us(fn: Callable[[], Any], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def main(rounds: int = 15) -> None:
    from handler.contract import chat
    from handler.contract.storable import check_storable

    real = chat.check_storable
    print("| body | validate, with the pass (µs) | without (µs) | ratio | the pass alone (µs) |")
    print("|---|---|---|---|---|")
    for name, body, n in (
        ("small", SMALL, 3000),
        ("typical", TYPICAL, 1000),
        ("large, 100 x 10 KB", LARGE, 50),
    ):
        with_pass, without, alone = [], [], []
        for _ in range(rounds):
            chat.check_storable = real
            with_pass.append(per_call_us(lambda b=body: chat.ChatRequest.model_validate(b), n))
            chat.check_storable = lambda *args: None
            without.append(per_call_us(lambda b=body: chat.ChatRequest.model_validate(b), n))
            alone.append(per_call_us(lambda b=body: check_storable(b, "ChatRequest", chat._free_form(b)), n))
        chat.check_storable = real
        w, wo, a = statistics.median(with_pass), statistics.median(without), statistics.median(alone)
        print(f"| {name} | {w:.1f} | {wo:.1f} | {w / wo:.2f} | {a:.1f} |")


if __name__ == "__main__":
    main()
