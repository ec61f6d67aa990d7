"""`make bench` keeps working: a run with a few iterations prints every row of its table.

Timings are never asserted (the machine decides them); what is asserted is that each measurement
actually ran, i.e. its row has a figure rather than `n/a`.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

ROWS = [
    "Cold start, store off",
    "Cold start, store on",
    "Cold start, store off, project with a system prompt template",
    "Cold start, bare FastAPI + Mangum (reference)",
    "Cold start, store off, as shipped",
    "Cold start, bare FastAPI + Mangum, as shipped (reference)",
    "Cold start as shipped, gateway / bare",
    "Warm request in-process, gateway (echo, store off)",
    "Warm request in-process, bare FastAPI + Mangum",
    "Warm overhead ratio, gateway / bare",
    "Warm request in-process, project with quotas (echo, store off)",
    "Quota check added per request (with - without quotas)",
    "Quota admission alone (one TransactWriteItems, moto server)",
    "Added time to first byte through uvicorn, non-streaming",
    "Added time to first byte through uvicorn, streaming (first SSE event)",
    "Relay throughput of a long stream, through the gateway",
    "Relay throughput of a long stream, upstream alone (reference)",
    "HTTP non-streamed response, gateway (echo, store off)",
    "HTTP non-streamed response, bare FastAPI route",
    "HTTP non-streamed response, gateway / bare route",
    "HTTP non-streamed response, LiteLLM proxy (mock_response)",
    "HTTP non-streamed response, LiteLLM / gateway",
    "HTTP time to first streamed content, gateway (echo, store off)",
    "HTTP time to first streamed content, bare FastAPI route",
    "HTTP time to first streamed content, gateway / bare route",
    "HTTP time to first streamed content, LiteLLM proxy (mock_response)",
    "HTTP time to first streamed content, LiteLLM / gateway",
    "Peak RSS after 50 requests, gateway, store on",
    "Peak RSS after 50 requests, bare FastAPI + Mangum",
    "Dependencies layer, unzipped",
    "Function code (src/), unzipped",
]
# Built from PyPI on first use (the build recipes' output, cached under .bench/): offline, the row
# is there but may say why it has no figure.
MAYBE_EMPTY = {
    "Cold start, store off, as shipped",
    "Cold start, bare FastAPI + Mangum, as shipped (reference)",
    "Cold start as shipped, gateway / bare",
    "Dependencies layer, unzipped",
    # LiteLLM lives in its own venv (`make bench-peers`); where it is not installed the rows say so.
    "HTTP non-streamed response, LiteLLM proxy (mock_response)",
    "HTTP non-streamed response, LiteLLM / gateway",
    "HTTP time to first streamed content, LiteLLM proxy (mock_response)",
    "HTTP time to first streamed content, LiteLLM / gateway",
}


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
    assert list(rows) == ROWS, proc.stdout
    for name in ROWS:
        if name in MAYBE_EMPTY and rows[name][0] == "n/a":
            assert rows[name][-1], f"{name}: no figure and no reason: {rows[name]}"
            continue
        median, _p99, _spread, _n, budget, result, _notes = rows[name]
        assert median not in ("", "n/a"), f"{name}: {rows[name]}"
        assert result in (("PASS", "MISS") if budget else ("",)), f"{name}: {rows[name]}"
