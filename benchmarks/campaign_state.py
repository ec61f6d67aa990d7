"""What a campaign with a stop rule adds to a warm request and to a feedback write, in process:
`python -m benchmarks.campaign_state [--rounds N]`.

`cached`: the config lookup every request does (`ConfigSource.cached`), bare and through the
campaign-state overlay (running, and decided: the overlaid copy is reused). `stop`: the CPU of one
stop-rule check (counters to `MetricCounts`, `evaluate_stop`) without its DynamoDB read.
Medians of interleaved rounds, in microseconds per call.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

from benchmarks.common import median
from handler.completions.campaign_state import CampaignStateConfig, stop_rule, variant_metrics
from handler.config.models import ProjectConfig
from handler.experiments.statistics import evaluate_stop
from handler.store.values import CampaignState, MetricStats, VariantStats

CID = "0f0e0d0c-0b0a-4908-8706-050403020116"


def _project() -> ProjectConfig:
    return ProjectConfig.model_validate(
        {
            "project": "shop",
            "default_model": "a",
            "models": {"a": {"provider": "echo"}, "b": {"provider": "echo"}},
            "campaigns": {
                "ab": {"id": CID, "variants": {"a": 1, "b": 1}, "stop": {"metric": "up", "min_samples": 100}}
            },
        }
    )


class _Source:
    def __init__(self, config: ProjectConfig) -> None:
        self.config = config

    def project(self, name: str) -> ProjectConfig:
        return self.config

    def cached(self, name: str) -> ProjectConfig | None:
        return self.config

    def secret(self, name: str) -> str:
        raise KeyError(name)


class _States:
    def __init__(self, state: CampaignState | None) -> None:
        self.state = state

    def campaign_state(self, campaign_id: str) -> CampaignState | None:
        return self.state

    def end_campaign(self, state: CampaignState) -> CampaignState:
        return state


def _per_call(fn: Callable[[], object], calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    source = _Source(_project())
    running = CampaignStateConfig(source, _States(None), 300)
    decided = CampaignStateConfig(source, _States(CampaignState(campaign_id=CID, winner="b")), 300)
    running.project("shop")
    decided.project("shop")
    campaign = source.config.campaigns["ab"]
    rule = stop_rule(campaign)
    assert rule is not None
    counters = [
        VariantStats(variant=v, feedback={"up": MetricStats(count=500, sum=s, sum_sq=s)})
        for v, s in (("a", 240), ("b", 260))
    ]

    def check() -> object:
        return evaluate_stop(rule, variant_metrics(["a", "b"], counters), campaign.control_variant)

    cases: dict[str, Callable[[], object]] = {
        "cached_bare": lambda: source.cached("shop"),
        "cached_overlay_running": lambda: running.cached("shop"),
        "cached_overlay_decided": lambda: decided.cached("shop"),
        "stop_check_cpu": check,
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, fn in cases.items():
            samples[name].append(_per_call(fn, args.calls if name != "stop_check_cpu" else args.calls // 20))
    print(json.dumps({name: round(median(values), 3) for name, values in samples.items()}, indent=1))


if __name__ == "__main__":
    main()
