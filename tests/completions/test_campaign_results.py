"""CampaignResultsService alone: listings, per-variant results from counters, and who may see them."""

from __future__ import annotations

import asyncio

import pytest

from handler.completions.caller import Caller
from handler.completions.campaign_results import CampaignResultsService
from handler.errors import InvalidRequest, NotFound
from tests.completions.memory import MemoryConfig, MemoryStore, project, stats

pytestmark = pytest.mark.unit

SPRING = "76d1fab3-214c-47ef-bb04-16270639bf89"
OLD = "0b9c7a8e-5d7c-4c55-9d0e-2f4c1c1c0001"
SHOP = Caller(frozenset({"shop"}))
OTHER = Caller(frozenset({"other"}))


def service() -> tuple[CampaignResultsService, MemoryStore]:
    shop = project(
        "shop",
        models={"m": {"provider": "echo"}, "small": {"provider": "echo"}, "large": {"provider": "echo"}},
        campaigns={
            "spring": {"id": SPRING, "status": "active", "variants": {"small": 3, "large": 1}},
            "old": {"id": OLD, "status": "ended", "variants": {"small": 1}},
        },
    )
    store = MemoryStore()
    return CampaignResultsService(store, MemoryConfig(shop, project("other"))), store


def test_a_projects_campaigns_are_listed_in_config_order() -> None:
    campaigns, _ = service()
    listed = asyncio.run(campaigns.campaigns(SHOP, "shop"))
    assert [c.model_dump() for c in listed] == [
        {
            "id": SPRING,
            "key": "spring",
            "project": "shop",
            "status": "active",
            "variants": {"small": 3.0, "large": 1.0},
        },
        {"id": OLD, "key": "old", "project": "shop", "status": "ended", "variants": {"small": 1.0}},
    ]
    assert asyncio.run(campaigns.campaigns(OTHER, "other")) == []
    with pytest.raises(NotFound, match="project 'shop' does not exist"):
        asyncio.run(campaigns.campaigns(OTHER, "shop"))
    with pytest.raises(NotFound) as missing:
        asyncio.run(campaigns.campaigns(Caller.anyone(), "ghost"))
    assert missing.value.param == "project"


def test_results_per_variant_with_shares_and_metrics() -> None:
    campaigns, store = service()
    store.stats[SPRING] = [
        stats("large", "shop", 1, thumbs=(1, 0.0)),
        stats("small", "shop", 3, thumbs=(2, 1.0), oc_bought=(3, 3.0)),
        stats("retired", "shop", 4),  # counted, then dropped from the config
    ]
    results = asyncio.run(campaigns.results(SHOP, "spring", "shop"))
    assert results.campaign.key == "spring" and results.requests == 8
    by_name = {v.variant: v for v in results.variants}
    assert [v.variant for v in results.variants] == ["small", "large", "retired"]
    small = by_name["small"]
    assert (small.model, small.weight, small.target_share, small.requests, small.share) == (
        "shop/small",
        3.0,
        0.75,
        3,
        3 / 8,
    )
    assert small.feedback["thumbs"].model_dump() == {"count": 2, "sum": 1.0, "mean": 0.5}
    assert small.outcomes["bought"].model_dump() == {"count": 3, "sum": 3.0, "mean": 1.0}
    assert (by_name["retired"].weight, by_name["retired"].target_share) == (0.0, 0.0)
    # The same campaign named by id, with or without its project.
    assert asyncio.run(campaigns.results(SHOP, SPRING, "shop")) == results
    assert asyncio.run(campaigns.results(SHOP, SPRING)) == results


def test_a_campaign_with_no_requests_lists_its_variants_at_zero() -> None:
    campaigns, _ = service()
    results = asyncio.run(campaigns.results(SHOP, "spring", "shop"))
    assert results.requests == 0
    assert [(v.variant, v.requests, v.share, v.target_share, v.feedback) for v in results.variants] == [
        ("small", 0, None, 0.75, {}),
        ("large", 0, None, 0.25, {}),
    ]


def test_who_may_see_results_and_how_unknown_ones_fail() -> None:
    campaigns, store = service()
    store.stats[SPRING] = [stats("small", "shop", 1)]
    with pytest.raises(NotFound) as hidden:
        asyncio.run(campaigns.results(OTHER, SPRING))  # by id: another project's is as if unused
    assert "has no stored requests" in hidden.value.message and "shop" not in hidden.value.message
    with pytest.raises(NotFound, match="project 'shop' does not exist"):
        asyncio.run(campaigns.results(OTHER, "spring", "shop"))
    with pytest.raises(InvalidRequest) as invalid:
        asyncio.run(campaigns.results(SHOP, "spring"))  # a key needs its project
    assert invalid.value.param == "project"
    with pytest.raises(NotFound) as missing:
        asyncio.run(campaigns.results(SHOP, OLD))  # no stored request: its project is unknown
    assert missing.value.param == "id_or_key" and "has no stored requests" in missing.value.message
    with pytest.raises(NotFound) as missing:
        asyncio.run(campaigns.results(SHOP, "winter", "shop"))
    assert missing.value.param == "ab_campaign"


def test_results_by_id_read_the_counters_once() -> None:
    campaigns, store = service()
    store.stats[SPRING] = [stats("small", "shop", 1)]
    asyncio.run(campaigns.results(SHOP, SPRING))
    assert store.reads == [("campaign_counters", SPRING)]
