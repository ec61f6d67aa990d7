"""`query_completions` against the emulated index: each filter, the time range, cursor paging."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

pytestmark = pytest.mark.unit

T0 = 1_700_000_000.0


@pytest.fixture
def project() -> str:
    return f"p-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def stored(store: Any, make_record: Callable[..., Any], project: str) -> list[Any]:
    """Twelve records a second apart, oldest first: labels, tags and users in a known pattern."""
    records = [
        make_record(
            project=project,
            created=T0 + n,
            labels={"team": "a" if n % 2 else "b", **({"env": "prod"} if n % 3 == 0 else {})},
            tags=["even"] if n % 2 == 0 else ["odd", "x"],
            user=f"user-{n % 4}",
        )
        for n in range(12)
    ]
    store.put_completions(records)
    return records


def every_page(store: Any, **filters: Any) -> tuple[list[str], int]:
    """Completion ids across every page, and how many pages it took."""
    from handler.store.values import CompletionQuery

    ids: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = store.query_completions(CompletionQuery(cursor=cursor, **filters))
        pages += 1
        ids.extend(r.completion_id for r in page.records)
        if page.next_cursor is None:
            return ids, pages
        cursor = page.next_cursor
        assert pages < 50


def newest_first(records: list[Any], keep: Callable[[Any], bool] = lambda r: True) -> list[str]:
    return [r.completion_id for r in sorted(records, key=lambda r: -r.created) if keep(r)]


def test_all_of_a_project_newest_first_in_pages(store: Any, stored: list[Any], project: str) -> None:
    ids, pages = every_page(store, project=project, limit=5)
    assert ids == newest_first(stored)
    assert pages == 3


@pytest.mark.parametrize(
    ("filters", "keep"),
    [
        ({"labels": {"team": "a"}}, lambda r: r.labels["team"] == "a"),
        ({"labels": {"team": "b", "env": "prod"}}, lambda r: r.labels == {"team": "b", "env": "prod"}),
        ({"tags": ["odd"]}, lambda r: "odd" in r.tags),
        ({"tags": ["x", "odd"]}, lambda r: "odd" in r.tags),
        ({"user": "user-1"}, lambda r: r.user == "user-1"),
        ({"user": "user-0", "labels": {"env": "prod"}}, lambda r: r.user == "user-0" and "env" in r.labels),
        ({"user": "user-1", "tags": ["even"]}, lambda r: False),
    ],
)
def test_filters_return_exactly_the_matching_records_across_pages(
    store: Any, stored: list[Any], project: str, filters: dict[str, Any], keep: Callable[[Any], bool]
) -> None:
    ids, _ = every_page(store, project=project, limit=2, **filters)
    assert ids == newest_first(stored, keep)


def test_the_time_range_is_inclusive_then_exclusive(store: Any, stored: list[Any], project: str) -> None:
    ids, _ = every_page(store, project=project, since=T0 + 3, until=T0 + 9, limit=4)
    assert ids == newest_first(stored, lambda r: T0 + 3 <= r.created < T0 + 9)
    assert every_page(store, project=project, since=T0 + 9, until=T0 + 9)[0] == []


def test_another_project_sees_nothing(store: Any, stored: list[Any]) -> None:
    assert every_page(store, project=f"p-{uuid.uuid4().hex[:12]}")[0] == []


def test_a_cursor_it_did_not_make_is_invalid(store: Any, stored: list[Any], project: str) -> None:
    from handler.store.errors import InvalidCursor
    from handler.store.values import CompletionQuery

    first = store.query_completions(CompletionQuery(project=project, labels={"team": "a"}, limit=2))
    assert first.next_cursor is not None
    with pytest.raises(InvalidCursor, match="not a cursor this API returned"):
        store.query_completions(CompletionQuery(project=project, cursor="not-a-cursor"))
    with pytest.raises(InvalidCursor, match="other filters"):  # another query's cursor
        store.query_completions(
            CompletionQuery(project=project, labels={"team": "b"}, cursor=first.next_cursor)
        )
    assert issubclass(InvalidCursor, ValueError)  # the store lets it through, unwrapped
