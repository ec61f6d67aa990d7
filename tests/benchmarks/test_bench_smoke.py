"""`make bench` keeps working: a run with a few iterations prints every row of its table.

Timings are never asserted (the machine decides them); what is asserted is that each measurement
actually ran, i.e. its row has a figure rather than `n/a`.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

MEASURED = [
    "Cold start, store off",
    "Cold start, store on",
    "Cold start, store off, project with a system prompt template",
    "Cold start, store off, src/ not byte-compiled (as deployed)",
    "Cold start, bare FastAPI + Mangum (reference)",
    "Warm request in-process, gateway (echo, store off)",
    "Warm request in-process, bare FastAPI + Mangum",
    "Warm overhead ratio, gateway / bare",
    "Added time to first byte through uvicorn, non-streaming",
    "Added time to first byte through uvicorn, streaming (first SSE event)",
    "Relay throughput of a long stream, through the gateway",
    "Relay throughput of a long stream, upstream alone (reference)",
    "Peak RSS after 50 requests, gateway, store on",
    "Peak RSS after 50 requests, bare FastAPI + Mangum",
    "Function code (src/), unzipped",
]
# Built from PyPI on first use: offline, the row is there but may say why it has no figure.
MAYBE_EMPTY = ["Dependencies layer, unzipped"]


def table_rows(stdout: str) -> dict[str, list[str]]:
    rows = {}
    for line in stdout.splitlines():
        if line.startswith("| ") and not line.startswith("| Measure"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


@pytest.mark.timeout(240)
def test_quick_bench_prints_every_row_with_a_figure() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--offline", "--runtime", "dev"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=230,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = table_rows(proc.stdout)
    assert list(rows) == MEASURED[:-1] + MAYBE_EMPTY + MEASURED[-1:], proc.stdout
    for name in MEASURED:
        median, _p99, _spread, _n, budget, result, _notes = rows[name]
        assert median not in ("", "n/a"), f"{name}: {rows[name]}"
        assert result in (("PASS", "MISS") if budget else ("",)), f"{name}: {rows[name]}"
