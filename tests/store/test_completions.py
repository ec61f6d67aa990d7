"""Completion records straight through the store: written, read back, listed by session."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.unit


def dump(record: Any) -> bytes:
    return orjson.dumps(record.model_dump(mode="json"))


def test_a_record_reads_back_exactly_and_a_missing_one_is_none(
    store: Any, make_record: Callable[..., Any]
) -> None:
    record = make_record(
        labels={"team": "a"}, tags=["x"], user="u1", created=1_700_000_000.123456, params={"t": 0.1 + 0.2}
    )
    store.put_completions([record])

    back = store.get_completion(record.completion_id)
    assert back is not None and dump(back) == dump(record)
    assert store.get_completion("00000000-0000-4000-8000-000000000000") is None


def test_a_session_lists_in_creation_order_then_choice_index(
    store: Any, make_record: Callable[..., Any]
) -> None:
    session = make_record().session_id
    # Written out of order, and across several put calls (and BatchWriteItem chunks of 25 items).
    late = [make_record(session_id=session, created=1_700_000_300.0, index=i) for i in (2, 0, 1)]
    early = make_record(session_id=session, created=1_700_000_100.000001)
    middle = [
        make_record(session_id=session, created=1_700_000_200.0, labels={f"k{n}": "v"}) for n in range(9)
    ]
    store.put_completions(late)
    store.put_completions([*middle, early])

    listed = store.list_session("demo", session)
    assert [r.completion_id for r in listed] == [
        early.completion_id,
        *sorted(r.completion_id for r in middle),  # same time and index: the id decides
        *[r.completion_id for r in sorted(late, key=lambda r: r.index)],
    ]
    assert store.list_session("demo", make_record().session_id) == []
    assert store.session_projects(session) == ["demo"]


def test_a_session_id_in_two_projects_is_two_sessions(store: Any, make_record: Callable[..., Any]) -> None:
    """Session ids are the clients': another project's writes under the same id change nothing here."""
    mine = make_record(project="a")
    theirs = [make_record(project="b", session_id=mine.session_id, index=i) for i in range(2)]  # n=2
    store.put_completions([mine])
    store.put_completions(theirs)  # two choices, one session item: a batch write refuses duplicates
    assert [r.completion_id for r in store.list_session("a", mine.session_id)] == [mine.completion_id]
    assert len(store.list_session("b", mine.session_id)) == 2
    assert store.session_projects(mine.session_id) == ["a", "b"]
    assert store.session_projects(make_record().session_id) == []


class Failing:
    """A DynamoDB client whose every call fails the way an outage does."""

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "down"}}, name)

        return call


@pytest.mark.parametrize(
    ("method", "argument", "message"),
    [
        ("get_completion", "c", "reading a completion failed: ClientError"),
        ("session_projects", "s", "reading a session failed: ClientError"),
        ("list_feedback", "c", "reading feedback failed: ClientError"),
        ("campaign_stats", "c", "reading campaign results failed: ClientError"),
    ],
)
def test_every_read_turns_aws_failures_into_store_errors(
    store_aws: dict[str, str], method: str, argument: str, message: str
) -> None:
    from handler.store.dynamodb import DynamoCompletionStore
    from handler.store.errors import StoreError

    store = DynamoCompletionStore(store_aws["TABLE_NAME"], client=Failing())  # type: ignore[arg-type]
    with pytest.raises(StoreError, match=message) as raised:
        getattr(store, method)(argument)
    assert isinstance(raised.value.__cause__, ClientError)


def test_a_refused_write_is_a_store_error(store_aws: dict[str, str], make_record: Callable[..., Any]) -> None:
    from handler.store.dynamodb import DynamoCompletionStore
    from handler.store.errors import StoreError

    store = DynamoCompletionStore(store_aws["TABLE_NAME"], client=Failing())  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="writing completion records failed: ClientError"):
        store.put_completions([make_record()])
