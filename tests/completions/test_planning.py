"""Planning alone: from a wire request and a project's config to a frozen plan, no I/O."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from handler.completions.planning import Overrides, Step, build_plan
from handler.config.models import ProjectConfig
from handler.contract.chat import ChatRequest
from handler.errors import InvalidRequest, NotFound

pytestmark = pytest.mark.unit


def project(**overrides: Any) -> ProjectConfig:
    config: dict[str, Any] = {
        "project": "p",
        "default_model": "a",
        "limits": {"max_ttft_ms": 9000},
        "models": {
            "a": {"provider": "echo", "fallbacks": ["b", "c", "b"], "max_ttft_ms": 100, "max_retries": 1},
            "b": {"provider": "echo", "max_retries": 0},
            "c": {"provider": "echo", "max_ttft_ms": 300, "fallbacks": ["a"]},
        },
        **overrides,
    }
    return ProjectConfig.model_validate(config)


def request(**fields: Any) -> ChatRequest:
    return ChatRequest.model_validate(
        {"model": "p", "messages": [{"role": "user", "content": "hi"}], **fields}
    )


def test_the_chain_is_the_model_then_its_fallbacks_each_with_its_own_window() -> None:
    plan = build_plan(request(), project(), received_at=0.0)
    assert plan.chain == (Step("a", 1, 100), Step("b", 0, 9000), Step("c", 2, 300))
    assert plan.deadline_ms == 100


def test_the_request_deadline_applies_to_every_step_and_zero_turns_it_off() -> None:
    assert {s.deadline_ms for s in build_plan(request(max_ttft_ms=50), project(), 0.0).chain} == {50}
    assert {s.deadline_ms for s in build_plan(request(max_ttft_ms=0), project(), 0.0).chain} == {None}


def test_without_any_deadline_setting_there_is_none() -> None:
    config = project(limits={})
    assert build_plan(request(model="p/b"), config, 0.0).chain == (Step("b", 0, None),)


def test_overrides_fix_store_request_id_and_choice_ids() -> None:
    fixed = Overrides(store=True, request_id="chatcmpl-fixed", choice_ids=("1", "2"))
    plan = build_plan(request(n=2, store=False), project(), 0.0, fixed)
    assert (plan.store, plan.request_id, plan.choice_ids) == (True, "chatcmpl-fixed", ("1", "2"))
    with pytest.raises(ValueError):
        build_plan(request(n=3), project(), 0.0, fixed)


def test_fresh_plans_get_one_distinct_id_per_choice() -> None:
    plan = build_plan(request(n=3), project(), 0.0)
    assert len(set(plan.choice_ids)) == 3


def test_the_plan_is_frozen() -> None:
    plan = build_plan(request(), project(), 0.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.store = False  # type: ignore[misc]


def test_store_follows_the_request_then_the_project() -> None:
    assert build_plan(request(), project(store=False), 0.0).store is False
    assert build_plan(request(store=True), project(store=False), 0.0).store is True


def test_an_unknown_model_is_not_found_and_a_bad_model_string_names_the_field() -> None:
    with pytest.raises(NotFound):
        build_plan(request(model="p/zzz"), project(), 0.0)
    with pytest.raises(InvalidRequest) as caught:
        build_plan(request(model="p/"), project(), 0.0)
    assert caught.value.param == "model"


def test_system_messages_alone_are_refused() -> None:
    with pytest.raises(InvalidRequest) as caught:
        build_plan(
            ChatRequest.model_validate({"model": "p", "messages": [{"role": "system", "content": "x"}]}),
            project(),
            0.0,
        )
    assert caught.value.param == "messages"
