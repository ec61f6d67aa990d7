"""FeedbackService alone, over an in-memory store: what is stored, for whom, and what is refused."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from handler.completions.caller import Caller
from handler.completions.feedback import FeedbackService
from handler.errors import NotFound
from tests.completions.memory import MemoryConfig, MemoryStore, project, record

pytestmark = pytest.mark.unit

A = Caller(frozenset({"a"}))
B = Caller(frozenset({"b"}))


def service(store: MemoryStore) -> tuple[FeedbackService, MemoryConfig]:
    config = MemoryConfig(project("a"), project("b"))
    ids = (f"id-{n}" for n in itertools.count(1))
    clock = itertools.count(1000.0)
    return FeedbackService(store, config, clock=lambda: next(clock), new_id=lambda: next(ids)), config


def test_feedback_is_stored_with_its_completions_project_campaign_and_variant() -> None:
    store = MemoryStore(record("c1", "a", campaign="camp", variant="v1"))
    feedback, _ = service(store)
    made = asyncio.run(
        feedback.add_feedback(
            A, "c1", metric="thumbs_up", value=True, reason="clear", details={"k": 1}, user_id="u"
        )
    )
    assert store.feedback == [made]
    assert made.model_dump() == {
        "feedback_id": "id-1",
        "completion_id": "c1",
        "project": "a",
        "metric": "thumbs_up",
        "value": 1.0,
        "reason": "clear",
        "details": {"k": 1},
        "user_id": "u",
        "created": 1000.0,
        "campaign": "camp",
        "variant": "v1",
    }
    assert isinstance(made.value, float)


def test_feedback_on_another_projects_completion_is_refused_and_nothing_is_stored() -> None:
    store = MemoryStore(record("c1", "a"))
    feedback, _ = service(store)
    with pytest.raises(NotFound) as refused:
        asyncio.run(feedback.add_feedback(B, "c1", metric="m", value=1))
    assert refused.value.message == "EntityNotFound: completion c1 does not exist"  # as if missing
    with pytest.raises(NotFound) as missing:
        asyncio.run(feedback.add_feedback(A, "c9", metric="m", value=1))
    assert missing.value.message == "EntityNotFound: completion c9 does not exist"
    assert missing.value.param == "completion_id"
    assert store.feedback == []


def test_listing_feedback_checks_the_completion_before_reading_any() -> None:
    store = MemoryStore(record("c1", "a"))
    feedback, _ = service(store)
    first = asyncio.run(feedback.add_feedback(A, "c1", metric="m", value=0.5))
    second = asyncio.run(feedback.add_feedback(A, "c1", metric="m", value=2))
    assert asyncio.run(feedback.feedback_of(A, "c1")) == [first, second]  # oldest first

    store.reads.clear()
    with pytest.raises(NotFound):
        asyncio.run(feedback.feedback_of(B, "c1"))
    with pytest.raises(NotFound):
        asyncio.run(feedback.feedback_of(A, "c9"))
    assert [method for method, _ in store.reads] == ["get_completion", "get_completion"]


def test_an_outcome_counts_toward_the_campaigns_of_the_sessions_completions_in_its_project() -> None:
    store = MemoryStore(
        record("c1", "a", "s1", campaign="camp", variant="v1", created=1.0),
        record("c2", "a", "s1", campaign="camp", variant="v2", created=2.0),
        record("c3", "a", "s1", campaign="camp", variant="v1", created=3.0),
        record("c4", "b", "s1", campaign="elsewhere", variant="v9", created=4.0),
        record("c5", "a", "s1", created=5.0),  # in no campaign
    )
    feedback, _ = service(store)
    outcome = asyncio.run(feedback.add_outcome(A, "a", session_id="s1", metric="bought", value=False))
    assert store.outcomes == [outcome]
    assert (outcome.outcome_id, outcome.project, outcome.value, outcome.created) == ("id-1", "a", 0.0, 1000.0)
    assert outcome.campaigns == [("camp", "v1"), ("camp", "v2")]

    # A session that was never stored is accepted: the outcome is kept, counted toward nothing.
    never = asyncio.run(feedback.add_outcome(A, "a", session_id="s0", metric="bought", value=1, user_id="u"))
    assert never.campaigns == [] and never.user_id == "u"


def test_an_outcome_checks_the_project_first_then_that_it_exists() -> None:
    store = MemoryStore()
    feedback, config = service(store)
    with pytest.raises(NotFound) as hidden:
        asyncio.run(feedback.add_outcome(B, "ghost", session_id="s1", metric="m", value=1))
    assert hidden.value.message == "EntityNotFound: project 'ghost' does not exist"
    assert config.reads == []  # refused before the config was read: a key cannot probe projects
    with pytest.raises(NotFound) as missing:
        asyncio.run(feedback.add_outcome(Caller.anyone(), "ghost", session_id="s1", metric="m", value=1))
    assert missing.value.message == "EntityNotFound: project 'ghost' does not exist"
    assert missing.value.param == "project_id"
    assert store.outcomes == [] and store.reads == []
