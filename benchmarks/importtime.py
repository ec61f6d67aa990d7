"""Where an as-shipped cold start spends its import time: `python -X importtime`, summed.

    .venv/bin/python -m benchmarks.importtime [--runs 5] [--top 25] [--target gateway|bare]

Runs the shipped gateway (or the bare floor) as the `as shipped` cold-start rows do (the build
recipes' output, read-only, bytecode writing off, Python 3.13, moto for AWS) with `-X importtime`,
several times, and prints for each module the minimum over the runs of its self time (import time
excluding its own imports), then the same summed by top-level package, split into what the handler's
import costs and what the first request imports on top.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from benchmarks.common import api_event, child_env
from benchmarks.emulation import NO_STORE, Emulation
from benchmarks.shipped import shipped, writable

MARK = "import time: -- handler imported --"


def parse(stderr: str) -> tuple[dict[str, int], dict[str, int]]:
    """(self µs by module before the mark, after it): the handler's import, the first request's."""
    phases: tuple[dict[str, int], dict[str, int]] = ({}, {})
    phase = 0
    for line in stderr.splitlines():
        if line.startswith(MARK):
            phase = 1
            continue
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _cumulative, name = line.split("|", 2)
        phases[phase][name.strip()] = int(self_us.split(":")[1])
    return phases


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.importtime", description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--target", choices=["gateway", "bare"], default="gateway")
    p.add_argument("--json", type=Path, help="also write the per-module minima (µs) here")
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="importtime-"))
    try:
        ship, note = shipped(tmp, build=True)
        if ship is None:
            print(note, file=sys.stderr)
            return 1
        driver = tmp / "driver"
        driver.mkdir()
        shutil.copy2(Path(__file__).with_name("cold_start.py"), driver / "cold_start.py")
        task = ship.task if args.target == "gateway" else ship.bare_task
        runs: list[tuple[dict[str, int], dict[str, int]]] = []
        with Emulation() as aws:
            event = tmp / "event.json"
            event.write_text(json.dumps(api_event(NO_STORE, store=False)))
            env = {
                **aws.env,
                "PYTHONPATH": ship.pythonpath(task),
                "PYTHONDONTWRITEBYTECODE": "1",
                "BENCH_MARK_IMPORTED": "1",
            }
            for _ in range(args.runs):
                proc = subprocess.run(
                    [
                        *(str(ship.python), "-X", "importtime", "-B", str(driver / "cold_start.py")),
                        *(str(event), str(tmp / "out.json"), args.target),
                    ],
                    env=child_env(env),
                    capture_output=True,
                    text=True,
                    check=True,
                )
                runs.append(parse(proc.stderr))
    finally:
        writable(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"-X importtime, {args.target} as shipped, {note}; minimum of {args.runs} runs per module\n")
    minima: list[dict[str, int]] = []
    for phase, title in ((0, "importing the handler"), (1, "the first request")):
        best: dict[str, int] = {}
        for run in runs:
            for name, us in run[phase].items():
                best[name] = min(best.get(name, us), us)
        minima.append(best)
        by_package: dict[str, int] = defaultdict(int)
        for name, us in best.items():
            by_package[name.split(".")[0]] += us
        total = sum(best.values())
        print(f"## {title}: {total / 1000:.1f} ms in {len(best)} modules\n")
        print("| package | self ms | | module | self ms |")
        print("|---|---|---|---|---|")
        packages = sorted(by_package.items(), key=lambda kv: -kv[1])[: args.top]
        modules = sorted(best.items(), key=lambda kv: -kv[1])[: args.top]
        for i in range(max(len(packages), len(modules))):
            left = f"{packages[i][0]} | {packages[i][1] / 1000:.1f}" if i < len(packages) else " | "
            right = f"{modules[i][0]} | {modules[i][1] / 1000:.1f}" if i < len(modules) else " | "
            print(f"| {left} | | {right} |")
        print()
    if args.json:
        args.json.write_text(json.dumps(minima, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
