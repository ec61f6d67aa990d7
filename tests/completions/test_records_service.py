"""RecordsService alone, over an in-memory store: what a caller may read, and the listing's filters."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from handler.completions.caller import Caller
from handler.completions.records import ListingFilters, RecordsService, parse_labels, parse_time
from handler.errors import InvalidRequest, NotFound
from tests.completions.memory import MemoryConfig, MemoryStore, project, record

pytestmark = pytest.mark.unit

T = TypeVar("T")
A = Caller(frozenset({"a"}))
B = Caller(frozenset({"b"}))


def run(work: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(work)


def service(*records: Any, projects: tuple[str, ...] = ("a", "b")) -> tuple[RecordsService, MemoryStore]:
    store = MemoryStore(*records)
    return RecordsService(store, MemoryConfig(*(project(p) for p in projects))), store


def test_a_completion_is_read_by_its_projects_callers_and_unrestricted_ones() -> None:
    records, _ = service(record("c1", "a", content="hello"))
    assert run(records.completion(A, "c1")).content == "hello"
    assert run(records.completion(Caller.anyone(), "c1")).content == "hello"


def test_a_caller_scoped_to_b_reading_as_completion_finds_it_missing() -> None:
    records, _ = service(record("c1", "a", content="secret"))
    with pytest.raises(NotFound) as refused:
        run(records.completion(B, "c1"))
    with pytest.raises(NotFound) as missing:
        run(records.completion(B, "c9"))
    assert (refused.value.status, refused.value.code, refused.value.param) == (
        404,
        "not_found",
        "completion_id",
    )
    assert refused.value.message == "EntityNotFound: completion c1 does not exist"
    assert missing.value.message == "EntityNotFound: completion c9 does not exist"


def test_an_unknown_completion_is_a_404_for_everybody() -> None:
    records, _ = service()
    for caller in (A, B, Caller.anyone()):
        with pytest.raises(NotFound) as missing:
            run(records.completion(caller, "c9"))
        assert missing.value.message == "EntityNotFound: completion c9 does not exist"
        assert missing.value.param == "completion_id"


def test_a_session_lists_in_order_within_its_project() -> None:
    records, _ = service(
        record("late", "a", "s1", created=3.0),
        record("early", "a", "s1", created=1.0),
        record("other", "b", "s1", created=2.0),
        record("alone", "a", "s2"),
    )
    # The same id in two projects is two sessions: each caller reads its own.
    assert [r.completion_id for r in run(records.session(A, "s1"))] == ["early", "late"]
    assert [r.completion_id for r in run(records.session(B, "s1"))] == ["other"]
    assert [r.completion_id for r in run(records.session(A, "s2"))] == ["alone"]
    assert [r.completion_id for r in run(records.session(Caller.anyone(), "s1", "b"))] == ["other"]
    with pytest.raises(NotFound) as hidden:
        run(records.session(B, "s2"))  # only project a holds s2: b finds no such session
    assert hidden.value.message == "EntityNotFound: session s2 does not exist"
    with pytest.raises(NotFound):
        run(records.session(B, "s1", "a"))  # naming another project does not open it either
    both = Caller(frozenset({"a", "b"}))
    for caller in (both, Caller.anyone()):  # two of the caller's projects hold s1: it names one
        with pytest.raises(InvalidRequest) as ambiguous:
            run(records.session(caller, "s1"))
        assert ambiguous.value.param == "project" and "'a', 'b'" in ambiguous.value.message
    assert len(run(records.session(both, "s1", "a"))) == 2


def test_an_empty_session_is_a_404() -> None:
    records, _ = service()
    with pytest.raises(NotFound) as missing:
        run(records.session(A, "s0"))
    assert (missing.value.message, missing.value.param) == (
        "EntityNotFound: session s0 does not exist",
        "session_id",
    )


def test_a_listing_reads_its_filters_only_for_a_project_the_caller_has() -> None:
    records, store = service()
    bad = ListingFilters(labels=["no-equals-sign"])
    with pytest.raises(NotFound) as hidden:
        run(records.listing(B, "a", bad))  # 404 first: a bad filter says nothing of project a
    assert (hidden.value.message, hidden.value.param) == (
        "EntityNotFound: project 'a' does not exist",
        "project",
    )
    with pytest.raises(NotFound):
        run(records.listing(A, "ghost", bad))  # an unknown project outside the key: the same
    with pytest.raises(NotFound) as missing:
        run(records.listing(Caller.anyone(), "ghost", bad))
    assert (missing.value.message, missing.value.param) == (
        "EntityNotFound: project 'ghost' does not exist",
        "project",
    )
    with pytest.raises(InvalidRequest) as invalid:
        run(records.listing(A, "a", bad))
    assert invalid.value.param == "label"
    assert store.queries == []


def test_a_listing_builds_its_query_from_the_filters() -> None:
    records, store = service(
        record("c1", "a", labels={"team": "x"}, tags=["t"], user="u", created=100.0),
        record("c2", "a", labels={"team": "y"}, created=100.0),
        record("c3", "b", labels={"team": "x"}, tags=["t"], user="u", created=100.0),
    )
    filters = ListingFilters(
        labels=["team=x"], tags=["t", "t"], user="u", since="1970-01-01T00:00:50", until="200"
    )
    page = run(records.listing(A, "a", filters, limit=5))
    assert [r.completion_id for r in page.records] == ["c1"] and page.next_cursor is None
    [query] = store.queries
    assert (query.project, query.labels, query.tags, query.user) == ("a", {"team": "x"}, ["t"], "u")
    assert (query.since, query.until, query.limit, query.cursor) == (50.0, 200.0, 5, None)


def test_a_cursor_the_store_refuses_is_a_400_naming_it() -> None:
    records, _ = service()
    with pytest.raises(InvalidRequest) as invalid:
        run(records.listing(A, "a", ListingFilters(), cursor="made-up"))
    assert invalid.value.param == "cursor" and invalid.value.message.startswith("cursor:")


def test_times_are_unix_seconds_or_iso_8601_utc_by_default() -> None:
    assert parse_time(None, "since") is None and parse_time("", "since") is None
    assert parse_time("12.5", "since") == 12.5
    assert parse_time("1970-01-01T00:01:00", "since") == 60.0
    assert parse_time("1970-01-01T01:00:00+01:00", "until") == 0.0
    with pytest.raises(InvalidRequest) as invalid:
        parse_time("soon", "until")
    assert invalid.value.param == "until"
    assert invalid.value.message == "until: 'soon' is neither unix seconds nor an ISO 8601 time"


def test_labels_are_key_value_and_a_key_with_two_values_is_refused() -> None:
    assert parse_labels(["a=1", "b=x=y", "a=1", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    for bad in (["a"], ["=1"]):
        with pytest.raises(InvalidRequest, match="must be key=value"):
            parse_labels(bad)
    with pytest.raises(InvalidRequest, match="two values; nothing can match"):
        parse_labels(["a=1", "a=2"])
