"""Stop rules in the config, the decided campaign's routing, and the state overlay's caching."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import ValidationError

from handler.completions.campaign_state import CampaignStateConfig, CampaignStops
from handler.completions.campaigns import route
from handler.config.models import ProjectConfig
from handler.store.values import CampaignState, MetricStats, VariantStats
from tests.completions.memory import MemoryConfig, MemoryStore

pytestmark = pytest.mark.unit

CID = "0f0e0d0c-0b0a-4908-8706-050403020116"


def shop(**campaign: Any) -> ProjectConfig:
    return ProjectConfig.model_validate(
        {
            "project": "shop",
            "default_model": "base",
            "models": {"base": {"provider": "echo"}, "a": {"provider": "echo"}, "b": {"provider": "echo"}},
            "campaigns": {
                "ab": {
                    "id": CID,
                    "variants": {"a": 1, "b": 1},
                    "stop": {"metric": "up", "min_samples": 5},
                    **campaign,
                }
            },
        }
    )


@pytest.mark.parametrize(
    ("campaign", "message"),
    [
        ({"control": "c"}, "control: 'c' is not one of variants"),
        ({"winner": "a"}, "winner: only a completed campaign has one"),
        ({"status": "completed", "winner": "z"}, "winner: 'z' is not one of variants"),
        ({"stop": {"metric": "up", "min_samples": 1}}, "min_samples"),
        ({"stop": {"metric": "up", "min_samples": 5, "confidence": 1}}, "confidence"),
        ({"then": "loser"}, "then"),
    ],
)
def test_bad_campaign_configs_are_named(campaign: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        shop(**campaign)


def test_a_completed_campaign_hands_its_traffic_to_the_winner_or_the_default() -> None:
    done = shop(status="completed", winner="b")
    assert route(done, None, None, "s", None).model_name == "b"
    assert route(done, None, "ab", "s", None).model_name == "b"  # naming it: the winner, uncounted
    assert route(done, None, "ab", "s", None).campaign is None
    assert route(done, "a", "ab", "s", None).model_name == "a"  # an explicit model is served
    default = shop(status="completed", winner="b", then="default")
    assert route(default, None, None, "s", None).model_name is None
    assert route(default, None, "ab", "s", None).model_name is None
    running = route(shop(), None, None, "s", None)
    assert running.campaign == CID and running.variant in {"a", "b"}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_state_is_read_once_per_max_age_and_a_completed_one_is_kept() -> None:
    store, clock = MemoryStore(), Clock()
    config = CampaignStateConfig(MemoryConfig(shop()), store, 30, clock)
    assert config.cached("shop") is None  # state unknown: the caller must take the I/O path
    assert config.project("shop").campaigns["ab"].status == "active"
    assert config.cached("shop") is not None
    assert store.reads == [("campaign_state", CID)]
    clock.now = 29
    config.project("shop")
    assert len(store.reads) == 1  # fresh: no read
    store.states[CID] = CampaignState(campaign_id=CID, winner="a")
    clock.now = 31
    assert config.cached("shop") is None
    decided = config.project("shop").campaigns["ab"]
    assert (decided.status, decided.winner) == ("completed", "a")
    clock.now = 10_000
    assert config.cached("shop") is not None  # completed never changes back: kept
    assert config.cached("shop") is config.cached("shop")  # one overlaid copy, not one per request
    assert len(store.reads) == 2


def test_the_stop_check_ends_the_campaign_once_and_the_next_request_sees_it() -> None:
    store = MemoryStore()
    config = CampaignStateConfig(MemoryConfig(shop()), store, 300)
    project = config.project("shop")
    stops = CampaignStops(store, config, clock=lambda: 42.0)

    def variant(name: str, ones: int, n: int = 10) -> VariantStats:
        return VariantStats(variant=name, feedback={"up": MetricStats(count=n, sum=ones, sum_sq=ones)})

    store.stats[CID] = [variant("a", 5), variant("b", 5)]
    assert asyncio.run(stops.check(project, CID, "up")) is None  # equal: not decided
    assert asyncio.run(stops.check(project, CID, "other")) is None  # not the rule's metric
    store.stats[CID] = [variant("a", 1), variant("b", 10)]
    state = asyncio.run(stops.check(project, CID, "up"))
    assert state is not None and (state.winner, state.ended) == ("b", 42.0)
    assert store.states[CID] is state
    cached = config.cached("shop")
    assert cached is not None and cached.campaigns["ab"].winner == "b"
    assert route(cached, None, None, "s", None).model_name == "b"
