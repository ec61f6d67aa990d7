"""Campaign assignment alone: deterministic per session (else user), by weight, order-free."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import pytest

from handler.completions.campaigns import assign, route
from handler.config.models import ProjectConfig
from handler.errors import InvalidRequest, NotFound

pytestmark = pytest.mark.unit

CAMPAIGN = "5b0c5c8e-1111-4222-8333-444455556666"


def project(status: str = "active", variants: dict[str, float] | None = None) -> ProjectConfig:
    config: dict[str, Any] = {
        "project": "p",
        "default_model": "a",
        "models": {"a": {"provider": "echo"}, "b": {"provider": "echo"}, "c": {"provider": "echo"}},
        "campaigns": {"spring": {"id": CAMPAIGN, "status": status, "variants": variants or {"a": 1, "b": 1}}},
    }
    return ProjectConfig.model_validate(config)


def test_a_session_keeps_its_variant() -> None:
    session = str(uuid.uuid4())
    seen = {route(project(), None, None, session, None).variant for _ in range(20)}
    assert len(seen) == 1


def test_the_split_follows_the_weights() -> None:
    counts = Counter(assign(CAMPAIGN, {"a": 3, "b": 1}, f"session:{i}") for i in range(4000))
    assert 0.70 < counts["a"] / 4000 < 0.80


def test_the_split_does_not_depend_on_the_config_order() -> None:
    subjects = [f"user:{i}" for i in range(200)]
    forward = [assign(CAMPAIGN, {"a": 1, "b": 2}, s) for s in subjects]
    backward = [assign(CAMPAIGN, {"b": 2, "a": 1}, s) for s in subjects]
    assert forward == backward


def test_zero_weight_variants_get_nothing() -> None:
    assert {assign(CAMPAIGN, {"a": 0, "b": 1}, f"user:{i}") for i in range(100)} == {"b"}


def test_the_project_alias_enters_the_active_campaign_and_a_named_model_does_not() -> None:
    routed = route(project(), None, None, "s1", None)
    assert (routed.campaign, routed.campaign_key) == (CAMPAIGN, "spring")
    assert route(project(), "c", None, "s1", None).campaign is None


def test_naming_a_campaign_by_key_or_id_and_a_model_outside_it() -> None:
    assert route(project(), None, "spring", None, "u").campaign == CAMPAIGN
    assert route(project(), None, CAMPAIGN, None, "u").campaign_key == "spring"
    with pytest.raises(InvalidRequest) as caught:
        route(project(), "c", "spring", None, None)
    assert caught.value.param == "model"
    with pytest.raises(NotFound):
        route(project(), None, "autumn", None, None)


def test_a_paused_campaign_takes_no_requests_by_name() -> None:
    with pytest.raises(InvalidRequest) as caught:
        route(project(status="paused"), None, "spring", None, None)
    assert caught.value.code == "campaign_not_active"
