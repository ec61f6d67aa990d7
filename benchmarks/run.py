"""`make bench`: measure the gateway against its budgets and print one Markdown table.

    .venv/bin/python -m benchmarks.run            # the full run (a few minutes at most)
    .venv/bin/python -m benchmarks.run --quick    # a few iterations of everything (the smoke test)
    make bench BENCH_ARGS="--skip http,size"

Each row: median and p99 of every sample, the spread (min..max of per-round medians, or of runs for
cold starts) so the machine's noise is visible, the budget, and PASS/MISS. Timing never fails the
command: it exits 0 whatever the figures, and non-zero only when something could not run at all.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import PYTHON, ROOT, Summary, child_env, median, percentile
from benchmarks.emulation import NO_STORE, QUOTA, STORE, TEMPLATED, Emulation

SECTIONS = ("cold", "warm", "quota", "http", "hot", "rss", "size")
SHIPPED = "store off, as shipped"
SHIPPED_BARE = "bare FastAPI + Mangum, as shipped (reference)"
SHIPPED_RATIO = "Cold start as shipped, gateway / bare"


@dataclass
class Variant:
    """One cold-start row's process: the event's project, what it imports, and how it is started."""

    project: str
    target: str  # "gateway" or "bare"
    env: dict[str, str]
    python: str
    script: str
    flags: tuple[str, ...] = ()
    imports_from: str = ""  # the handler's module must come from here


@dataclass
class Row:
    name: str
    unit: str
    summary: Summary | None = None
    value: float | None = None  # a single figure (sizes)
    budget: float | None = None
    higher_is_better: bool = False
    note: str = ""

    def verdict(self) -> str:
        figure = self.summary.median if self.summary is not None else self.value
        if self.budget is None or figure is None:
            return ""
        ok = figure >= self.budget if self.higher_is_better else figure <= self.budget
        return "PASS" if ok else "MISS"

    def cells(self) -> list[str]:
        fmt = _fmt(self.unit)
        budget = "" if self.budget is None else f"{'≥' if self.higher_is_better else '≤'} {fmt(self.budget)}"
        if self.summary is not None:
            s = self.summary
            return [
                self.name,
                fmt(s.median),
                fmt(s.p99),
                f"{fmt(s.low)} .. {fmt(s.high)}",
                str(s.count),
                budget,
                self.verdict(),
                self.note,
            ]
        if self.value is not None:
            return [self.name, fmt(self.value), "", "", "1", budget, self.verdict(), self.note]
        return [self.name, "n/a", "", "", "", budget, "", self.note]


def _fmt(unit: str) -> Callable[[float], str]:
    def fmt(v: float) -> str:
        if unit == "ms":
            return f"{v:.3f} ms" if abs(v) < 10 else f"{v:.1f} ms"
        if unit == "x":
            return f"{v:.2f}x"
        if unit == "/s":
            return f"{v:,.0f}/s"
        if unit == "MB":
            return f"{v:.1f} MB"
        if unit == "KB":
            return f"{v:.0f} KB"
        return f"{v:g}"

    return fmt


@dataclass
class Bench:
    args: argparse.Namespace
    python: str = PYTHON  # the function's interpreter: the Lambda-equivalent venv when built
    rows: list[Row] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bench-")))

    def log(self, message: str) -> None:
        print(f"[bench] {message}", file=sys.stderr, flush=True)

    # -- cold start --------------------------------------------------------------------------------

    def cold(self, aws: Emulation) -> None:
        from benchmarks.common import api_event
        from benchmarks.shipped import shipped, snapshot

        runs = self.args.cold_runs
        src = {"PYTHONPATH": str(ROOT / "src")}
        dev = (self.python, str(ROOT / "benchmarks" / "cold_start.py"))
        variants: dict[str, Variant] = {
            "store off": Variant(NO_STORE, "gateway", src, *dev),
            "store on": Variant(STORE, "gateway", src, *dev),
            "store off, project with a system prompt template": Variant(TEMPLATED, "gateway", src, *dev),
            "bare FastAPI + Mangum (reference)": Variant(NO_STORE, "bare", {"PYTHONPATH": str(ROOT)}, *dev),
        }
        # As shipped: what the build recipes produce (the layer, the function code, and the floor's
        # code built the same way), read-only, bytecode writing off, the runtime's boto3 after the
        # layer; run by a Python 3.13 when this machine has one.
        try:
            ship, ship_note = shipped(self.tmp, build=not self.args.offline)
        except RuntimeError as exc:
            ship, ship_note = None, f"could not build: {str(exc)[:200]}"
        if ship is not None:
            driver = self.tmp / "shipped" / "driver"  # sys.path[0]: a directory holding only the script
            driver.mkdir()
            shutil.copy2(ROOT / "benchmarks" / "cold_start.py", driver / "cold_start.py")
            flags = ("-X", "frozen_modules=on", "-B")
            off = {"PYTHONDONTWRITEBYTECODE": "1"}
            variants[SHIPPED] = Variant(
                NO_STORE,
                "gateway",
                {"PYTHONPATH": ship.pythonpath(ship.task), **off},
                str(ship.python),
                str(driver / "cold_start.py"),
                flags,
                str(ship.task),
            )
            variants[SHIPPED_BARE] = Variant(
                NO_STORE,
                "bare",
                {"PYTHONPATH": ship.pythonpath(ship.bare_task), **off},
                str(ship.python),
                str(driver / "cold_start.py"),
                flags,
                str(ship.bare_task),
            )
            before = snapshot(self.tmp / "shipped")
        events = {}
        for label, variant in variants.items():
            events[label] = self.tmp / f"event-{variant.project}.json"
            events[label].write_text(json.dumps(api_event(variant.project, store=variant.project == STORE)))
        samples: dict[str, list[dict[str, float]]] = {label: [] for label in variants}
        # The first run of each writes bytecode (the dev trees) and warms the page cache: not counted.
        warmups = 0 if self.args.quick else 1
        self.log(f"cold start: {len(variants)} variants x {runs} runs (+{warmups} warm-up each)")
        for run in range(runs + warmups):
            for label, variant in variants.items():
                result = self._cold_once(events[label], variant, aws.env)
                if result.get("status") != 200:
                    raise RuntimeError(
                        f"cold start ({label}) answered {result.get('status')}: {result.get('body')}"
                    )
                if run >= warmups:
                    samples[label].append(result)
        if ship is not None and snapshot(self.tmp / "shipped") != before:
            raise RuntimeError("the shipped trees changed while they ran: they must be read-only")
        self.raw["cold"] = samples
        for label, results in samples.items():
            totals = [r["total_ms"] for r in results]
            reference = "reference" in label
            note = ""
            if label in (SHIPPED, SHIPPED_BARE):
                assert ship is not None
                note = f"Python {ship.version}" + ("" if ship.version == "3.13" else f": {ship_note}")
            budget = None if reference or label == SHIPPED else 300.0
            self.rows.append(
                Row(f"Cold start, {label}", "ms", Summary.runs(totals), budget=budget, note=note)
            )
            parts = {
                k: median([r[k] for r in results])
                for k in ("interpreter_ms", "import_ms", "request_ms", "cpu_ms", "cpu_init_ms")
            }
            compiled = max(r.get("compiled_at_start", 0) for r in results)
            self.details.append(
                f"Cold start, {label}: interpreter start {parts['interpreter_ms']:.0f} ms + import "
                f"{parts['import_ms']:.0f} ms + first request {parts['request_ms']:.0f} ms; CPU time "
                f"{parts['cpu_ms']:.0f} ms, {parts['cpu_init_ms']:.0f} of them before the first request (medians; "
                f"{results[0]['modules']} modules loaded, "
                f"{compiled} compiled from source at start)"
            )
        if ship is None:
            for label in (SHIPPED, SHIPPED_BARE):
                self.rows.append(Row(f"Cold start, {label}", "ms", note=ship_note))
            self.rows.append(Row(SHIPPED_RATIO, "x", budget=1.25, note=ship_note))
            return
        gateway, bare = samples[SHIPPED], samples[SHIPPED_BARE]
        wall = [g["total_ms"] / b["total_ms"] for g, b in zip(gateway, bare, strict=True)]
        g_ms, b_ms = [r["total_ms"] for r in gateway], [r["total_ms"] for r in bare]
        cpu = median([r["cpu_ms"] for r in gateway]) / median([r["cpu_ms"] for r in bare])
        self.rows.append(
            Row(
                SHIPPED_RATIO,
                "x",
                Summary(
                    median(g_ms) / median(b_ms),
                    percentile(g_ms, 99) / percentile(b_ms, 99),
                    min(wall),
                    max(wall),
                    len(wall),
                ),
                budget=1.25,
                note=f"CPU time ratio {cpu:.2f}x; p99: ratio of the p99s; spread: run by run",
            )
        )

    def _cold_once(self, event: Path, variant: Variant, aws_env: dict[str, str]) -> dict[str, Any]:
        out = self.tmp / "cold.json"
        out.unlink(missing_ok=True)
        env = {**aws_env, **variant.env}
        spawned = time.monotonic()
        proc = subprocess.run(
            [variant.python, *variant.flags, variant.script, str(event), str(out), variant.target],
            cwd=ROOT,
            env=child_env(env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=120,
        )
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(
                f"cold start process failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}"
            )
        result: dict[str, Any] = json.loads(out.read_text())
        if variant.imports_from and not str(result.get("handler_file") or "").startswith(
            variant.imports_from
        ):
            raise RuntimeError(f"the code under {variant.imports_from} was not the one imported: {result}")
        result["total_ms"] = (result["answered"] - spawned) * 1000
        result["interpreter_ms"] = (result["started"] - spawned) * 1000
        result["import_ms"] = (result["imported"] - result["importing"]) * 1000
        result["request_ms"] = (result["answered"] - result["imported"]) * 1000
        result["cpu_ms"] = result["cpu"] * 1000
        result["cpu_init_ms"] = result["cpu_imported"] * 1000  # interpreter start and import
        return result

    # -- warm, in-process --------------------------------------------------------------------------

    def warm(self, aws: Emulation) -> None:
        a = self.args
        self.log(f"warm overhead: {a.warm_rounds} rounds x {a.warm_requests} requests, gateway and bare")
        result = self._child(
            aws,
            [
                "overhead",
                "--model",
                NO_STORE,
                "--requests",
                str(a.warm_requests),
                "--rounds",
                str(a.warm_rounds),
                "--warmup",
                str(min(50, a.warm_requests)),
            ],
        )
        if result["failures"]:
            raise RuntimeError(f"warm requests failed: {result['failures']}")
        gateway, bare = result["samples"]["gateway"], result["samples"]["bare"]
        self.raw["warm"] = result["samples"]
        self.rows.append(Row("Warm request in-process, gateway (echo, store off)", "ms", Summary.of(gateway)))
        self.rows.append(Row("Warm request in-process, bare FastAPI + Mangum", "ms", Summary.of(bare)))
        ratios = [median(g) / median(b) for g, b in zip(gateway, bare, strict=True)]
        flat_g = [v for r in gateway for v in r]
        flat_b = [v for r in bare for v in r]
        ratio = Summary(
            median(flat_g) / median(flat_b),
            percentile(flat_g, 99) / percentile(flat_b, 99),
            min(ratios),
            max(ratios),
            len(ratios),
        )
        self.rows.append(
            Row(
                "Warm overhead ratio, gateway / bare",
                "x",
                ratio,
                budget=2.5,
                note="p99 column: ratio of the p99s; n: rounds",
            )
        )

    def quota(self, aws: Emulation) -> None:
        """What the quota check adds: the same request on a project with all four quotas and on one
        without (the admission, one conditional write, plus the charge after the answer, one more),
        and the admission alone. Against the moto server on localhost: DynamoDB's own round trip
        (single-digit ms in-region) replaces moto's."""
        a = self.args
        self.log(f"quota check: {a.warm_rounds} rounds x {a.warm_requests} requests, with and without")
        result = self._child(
            aws,
            [
                "quota",
                "--model",
                NO_STORE,
                "--limited",
                QUOTA,
                "--requests",
                str(a.warm_requests),
                "--rounds",
                str(a.warm_rounds),
                "--warmup",
                str(min(50, a.warm_requests)),
            ],
        )
        if result["failures"]:
            raise RuntimeError(f"quota requests failed: {result['failures']}")
        samples = result["samples"]
        self.raw["quota"] = samples
        plain, limited = samples["plain"], samples["quota"]
        self.rows.append(
            Row("Warm request in-process, project with quotas (echo, store off)", "ms", Summary.of(limited))
        )
        added = [median(q) - median(p) for q, p in zip(limited, plain, strict=True)]
        flat_q = [v for r in limited for v in r]
        flat_p = [v for r in plain for v in r]
        self.rows.append(
            Row(
                "Quota check added per request (with - without quotas)",
                "ms",
                Summary(
                    median(flat_q) - median(flat_p),
                    percentile(flat_q, 99) - percentile(flat_p, 99),
                    min(added),
                    max(added),
                    len(added),
                ),
                note="admission + charge, moto server; n: rounds",
            )
        )
        self.rows.append(
            Row(
                "Quota admission alone (one TransactWriteItems, moto server)",
                "ms",
                Summary.of(samples["admit"]),
                note="on the path to the first token",
            )
        )

    def rss(self, aws: Emulation) -> None:
        n = self.args.rss_requests
        self.log(f"peak RSS after {n} requests (gateway store on; bare)")
        for target, label, budget in (
            ("gateway", "gateway, store on", 80.0),
            ("bare", "bare FastAPI + Mangum", None),
        ):
            peaks = []
            for _ in range(self.args.rss_runs):
                result = self._child(
                    aws, ["rss", "--target", target, "--model", STORE, "--store", "--requests", str(n)]
                )
                if result["failures"]:
                    raise RuntimeError(f"RSS requests ({target}) failed: {result['failures']}")
                peaks.append(result["peak_mb"])
            self.raw.setdefault("rss", {})[target] = peaks
            self.rows.append(
                Row(f"Peak RSS after {n:,} requests, {label}", "MB", Summary.runs(peaks), budget=budget)
            )

    def _child(self, aws: Emulation, argv: Sequence[str]) -> dict[str, Any]:
        out = self.tmp / "warm.json"
        out.unlink(missing_ok=True)
        # tools/: the shared LambdaContext (gatewayctl.local.context), which the function's own
        # runtime (`--runtime lambda`) does not have installed.
        path = os.pathsep.join(str(p) for p in (ROOT, ROOT / "src", ROOT / "tools"))
        env = child_env({**aws.env, "PYTHONPATH": path})
        proc = subprocess.run(
            [self.python, "-m", "benchmarks.warm", argv[0], str(out), *argv[1:]],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=600,
        )
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"benchmarks.warm {argv[0]} failed: {proc.stderr.decode()[-2000:]}")
        result: dict[str, Any] = json.loads(out.read_text())
        return result

    # -- HTTP through uvicorn ----------------------------------------------------------------------

    def http(self, aws: Emulation) -> None:
        from benchmarks.relay import Relay

        a = self.args
        self.log(
            f"HTTP: {a.http_rounds} rounds x {a.http_requests} requests per kind; "
            f"{a.long_runs} long streams of {a.long_chunks:,} chunks"
        )
        with Relay(aws, a.long_chunks, self.python) as relay:
            result = relay.measure(a.http_requests, a.http_rounds, a.long_runs)
            crashed = relay.gateway_stderr()
        if crashed:
            self.details.append(f"uvicorn exited early: {crashed}")
        self.raw["http"] = {"ttfb": result.ttfb, "throughput": result.throughput, "errors": result.errors}
        for stream in (False, True):
            kind = "stream" if stream else "json"
            gateway, direct = result.ttfb[f"gateway {kind}"], result.ttfb[f"direct {kind}"]
            what = "streaming (first SSE event)" if stream else "non-streaming"
            name = f"Added time to first byte through uvicorn, {what}"
            if gateway and direct:
                g = [v for r in gateway for v in r]
                d = [v for r in direct for v in r]
                per_round = [median(x) - median(y) for x, y in zip(gateway, direct, strict=True)]
                added = Summary(
                    median(g) - median(d),
                    percentile(g, 99) - percentile(d, 99),
                    min(per_round),
                    max(per_round),
                    len(g),
                )
                self.rows.append(
                    Row(
                        name,
                        "ms",
                        added,
                        budget=2.0,
                        note=f"direct {median(d):.3f} ms, via gateway {median(g):.3f} ms; p99: difference",
                    )
                )
            else:
                why = result.errors.get(f"gateway {kind}") or result.errors.get(f"direct {kind}", "")
                self.rows.append(Row(name, "ms", budget=2.0, note=f"not measurable: {why[:160]}"))
        for side, label, budget in (
            ("gateway", "through the gateway", 50_000.0),
            ("direct", "upstream alone (reference)", None),
        ):
            runs = result.throughput.get(side) or []
            name = f"Relay throughput of a long stream, {label}"
            if runs:
                s = Summary.runs(runs)
                s.p99 = percentile(runs, 1)  # the slow tail of a rate is its low end
                self.rows.append(
                    Row(
                        name,
                        "/s",
                        s,
                        budget=budget,
                        higher_is_better=True,
                        note=f"{result.events.get(side, 0):,} SSE events per stream; p99 column: 1st percentile",
                    )
                )
            else:
                why = result.errors.get("gateway stream") or result.errors.get(f"throughput {side}", "")
                self.rows.append(
                    Row(name, "/s", budget=budget, higher_is_better=True, note=f"not measurable: {why[:160]}")
                )

    # -- the hot path: gateway vs a bare FastAPI route vs LiteLLM's proxy, under uvicorn ----------

    def hot(self, aws: Emulation) -> None:
        from benchmarks.hot import HotPath

        a = self.args
        self.log(f"hot path: {a.hot_rounds} rounds x {a.hot_requests} requests per server and kind")
        with HotPath(aws, self.python, self.tmp) as hot:
            result = hot.measure(a.hot_requests, a.hot_rounds)
        self.raw["hot"] = {"samples": result.samples, "errors": result.errors}
        for stream in (False, True):
            kind = "stream" if stream else "json"
            what = "time to first streamed content" if stream else "non-streamed response"
            flat = {name: [v for r in rounds for v in r] for name, rounds in result.samples.items()}
            for side, label in (("gateway", "gateway (echo, store off)"), ("bare", "bare FastAPI route")):
                values = flat.get(f"{side} {kind}")
                name = f"HTTP {what}, {label}"
                if values:
                    self.rows.append(Row(name, "ms", Summary.of(result.samples[f"{side} {kind}"])))
                else:
                    self.rows.append(Row(name, "ms", note=f"not measurable: {result.errors.get(side, '')}"))
            self.rows.append(
                self._ratio(
                    result.samples,
                    f"gateway {kind}",
                    f"bare {kind}",
                    f"HTTP {what}, gateway / bare route",
                    1.25,
                    higher=False,
                )
            )
            litellm = flat.get(f"litellm {kind}")
            name = f"HTTP {what}, LiteLLM proxy (mock_response)"
            if litellm:
                self.rows.append(Row(name, "ms", Summary.of(result.samples[f"litellm {kind}"])))
            else:
                self.rows.append(Row(name, "ms", note=f"not measured: {result.errors.get('litellm', '')}"))
            self.rows.append(
                self._ratio(
                    result.samples,
                    f"litellm {kind}",
                    f"gateway {kind}",
                    f"HTTP {what}, LiteLLM / gateway",
                    5.0,
                    higher=True,
                )
            )

    def _ratio(
        self,
        samples: dict[str, list[list[float]]],
        top: str,
        bottom: str,
        name: str,
        budget: float,
        *,
        higher: bool,
    ) -> Row:
        if not samples.get(top) or not samples.get(bottom):
            return Row(name, "x", budget=budget, higher_is_better=higher, note="not measurable")
        t = [v for r in samples[top] for v in r]
        b = [v for r in samples[bottom] for v in r]
        per_round = [median(x) / median(y) for x, y in zip(samples[top], samples[bottom], strict=True)]
        return Row(
            name,
            "x",
            Summary(
                median(t) / median(b),
                percentile(t, 99) / percentile(b, 99),
                min(per_round),
                max(per_round),
                len(per_round),
            ),
            budget=budget,
            higher_is_better=higher,
            note="median over median; p99: ratio of the p99s; spread and n: rounds",
        )

    # -- sizes -------------------------------------------------------------------------------------

    def size(self) -> None:
        from benchmarks.sizes import code_size, layer_size

        self.log("sizes: dependencies layer (built once, cached under .bench/) and src/")
        try:
            layer = layer_size(build=not self.args.offline)
        except RuntimeError as exc:
            layer, why = None, str(exc)[:200]
        else:
            why = "not built (--offline, and nothing cached under .bench/)"
        if layer is None:
            self.rows.append(Row("Dependencies layer, unzipped", "MB", budget=30.0, note=why))
        else:
            self.rows.append(
                Row(
                    "Dependencies layer, unzipped",
                    "MB",
                    value=layer.unzipped / 1e6,
                    budget=30.0,
                    note=f"zipped {layer.zipped / 1e6:.1f} MB, {layer.files:,} files",
                )
            )
            biggest = ", ".join(f"{n} {s / 1e6:.1f}" for n, s in layer.largest)
            self.details.append(f"Layer, largest entries (MB): {biggest}")
        code = code_size(self.tmp)
        self.rows.append(
            Row(
                "Function code (src/), unzipped",
                "KB",
                value=code.unzipped / 1e3,
                note=f"zipped {code.zipped / 1e3:.0f} KB, {code.files} files",
            )
        )

    # -- the table ---------------------------------------------------------------------------------

    def table(self) -> str:
        header = ["Measure", "Median", "p99", "Spread (min .. max)", "n", "Budget", "Result", "Notes"]
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(row.cells()) + " |" for row in self.rows]
        return "\n".join(lines)


def machine() -> str:
    cpus = os.cpu_count()
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.system()} {platform.machine()}, {cpus} CPUs {model}, Python {platform.python_version()}"
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="few iterations of everything (smoke test)")
    p.add_argument("--skip", default="", help=f"comma-separated sections to skip: {','.join(SECTIONS)}")
    p.add_argument("--cold-runs", type=int, default=15)
    p.add_argument("--warm-requests", type=int, default=400, help="per round and handler")
    p.add_argument("--warm-rounds", type=int, default=5)
    p.add_argument("--http-requests", type=int, default=100, help="per round and kind")
    p.add_argument("--http-rounds", type=int, default=5)
    p.add_argument("--hot-requests", type=int, default=40, help="per round, server and kind (hot)")
    p.add_argument("--hot-rounds", type=int, default=5)
    p.add_argument("--long-chunks", type=int, default=20_000)
    p.add_argument("--long-runs", type=int, default=5)
    p.add_argument("--rss-requests", type=int, default=1000)
    p.add_argument("--rss-runs", type=int, default=3)
    p.add_argument(
        "--offline",
        action="store_true",
        help="no PyPI: use the layer and runtime venv cached under .bench/, else the dev venv",
    )
    p.add_argument(
        "--runtime",
        choices=["lambda", "dev"],
        default="lambda",
        help="the function's packages: exactly the layer's plus boto3 (a venv built once under "
        ".bench/), or this dev venv",
    )
    p.add_argument("--json", type=Path, help="also write every sample here")
    args = p.parse_args(argv)
    if args.quick:
        args.cold_runs, args.warm_requests, args.warm_rounds = 1, 20, 2
        args.http_requests, args.http_rounds, args.long_chunks, args.long_runs = 5, 2, 500, 1
        args.rss_requests, args.rss_runs = 50, 1
        args.hot_requests, args.hot_rounds = 5, 2
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = args.skip - set(SECTIONS)
    if unknown:
        p.error(f"unknown section(s) to skip: {', '.join(sorted(unknown))}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    bench = Bench(args)
    started = time.monotonic()
    runtime = "dev venv (.venv: dev packages included)"
    if args.runtime == "lambda":
        from benchmarks.sizes import runtime_python

        try:
            python = runtime_python(build=not args.offline)
        except RuntimeError as exc:
            python = None
            bench.log(f"could not build the Lambda-equivalent venv, using the dev venv: {exc}")
        if python is not None:
            bench.python = str(python)
            runtime = f"Lambda-equivalent venv ({python.parent.parent.relative_to(ROOT)}: layer requirements + boto3)"
    bench.log(f"function runs on: {runtime}")
    loads = [os.getloadavg()[0]]
    try:
        with Emulation() as aws:
            bench.log(f"moto server at {aws.endpoint}")
            for section in ("cold", "warm", "quota", "http", "hot", "rss"):
                if section not in args.skip:
                    getattr(bench, section)(aws)
        if "size" not in args.skip:
            bench.size()
    finally:
        from benchmarks.shipped import writable

        writable(bench.tmp)  # the shipped trees are read-only
        shutil.rmtree(bench.tmp, ignore_errors=True)
    loads.append(os.getloadavg()[0])
    print(
        f"\nchat-gateway benchmarks — {machine()} — {time.strftime('%Y-%m-%d %H:%M')} "
        f"({time.monotonic() - started:.0f} s; load average {loads[0]:.1f} at start, {loads[1]:.1f} at end)"
    )
    print(f"Function processes run on: {runtime}\n")
    print(bench.table())
    if bench.details:
        print()
        for line in bench.details:
            print(f"- {line}")
    if args.json:
        args.json.write_text(json.dumps(bench.raw, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
