"""The DynamoDB helpers: bounded, jittered resends of unprocessed items; paginated queries;
conditional writes; the time-ordered sort key."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from handler.store.dynamo import (
    Backoff,
    conditional,
    get_items,
    query_items,
    query_pages,
    resend,
    time_key,
    write_items,
)
from handler.store.errors import InvalidCursor, StoreError, store_errors

pytestmark = pytest.mark.unit


class Sleeps:
    def __init__(self) -> None:
        self.pauses: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.pauses.append(seconds)


def put(n: int) -> dict[str, Any]:
    return {"PutRequest": {"Item": {"pk": {"S": f"K#{n}"}, "sk": {"S": "X"}}}}


class Unprocessing:
    """A client that leaves the last item of each call unprocessed its first `times` calls."""

    def __init__(self, times: int) -> None:
        self.times = times
        self.writes: list[list[dict[str, Any]]] = []
        self.gets: list[list[dict[str, Any]]] = []

    def batch_write_item(self, *, RequestItems: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
        (table, requests), *_ = RequestItems.items()
        self.writes.append(requests)
        if len(self.writes) <= self.times:
            return {"UnprocessedItems": {table: requests[-1:]}}
        return {"UnprocessedItems": {}}

    def batch_get_item(self, *, RequestItems: dict[str, dict[str, Any]]) -> dict[str, Any]:
        (table, request), *_ = RequestItems.items()
        keys = request["Keys"]
        self.gets.append(keys)
        if len(self.gets) <= self.times:
            found, left = keys[:-1], {table: {**request, "Keys": keys[-1:]}}
        else:
            found, left = keys, {}
        return {"Responses": {table: [{**k, "v": {"S": "found"}} for k in found]}, "UnprocessedKeys": left}


def test_unprocessed_writes_are_resent_until_written_with_jittered_pauses() -> None:
    client = Unprocessing(times=3)
    sleeps = Sleeps()
    write_items(client, "t", [put(n) for n in range(3)], what="w", backoff=Backoff(sleep=sleeps))

    assert [len(w) for w in client.writes] == [3, 1, 1, 1]
    assert client.writes[1] == [put(2)]  # only what was left, not the whole batch again
    assert len(sleeps.pauses) == 3
    assert all(0 <= p <= cap for p, cap in zip(sleeps.pauses, (0.05, 0.1, 0.2), strict=True))


def test_writes_go_25_per_call() -> None:
    client = Unprocessing(times=0)
    write_items(client, "t", [put(n) for n in range(60)], what="w", backoff=Backoff(sleep=Sleeps()))
    assert [len(w) for w in client.writes] == [25, 25, 10]
    assert [r for w in client.writes for r in w] == [put(n) for n in range(60)]


def test_writes_left_unprocessed_past_the_bound_are_a_store_error() -> None:
    client = Unprocessing(times=10**6)
    sleeps = Sleeps()
    with pytest.raises(
        StoreError, match="batch b1: writing: DynamoDB left items unprocessed after 4 attempts"
    ):
        write_items(
            client, "t", [put(1)], what="batch b1: writing", backoff=Backoff(attempts=4, sleep=sleeps)
        )
    assert len(client.writes) == 4
    assert len(sleeps.pauses) == 3  # none after the last attempt


def test_unprocessed_keys_are_read_again_and_every_item_is_returned() -> None:
    client = Unprocessing(times=2)
    keys = [{"pk": {"S": f"K#{n}"}, "sk": {"S": "X"}} for n in range(150)]
    found = get_items(client, "t", keys, what="r", projection="pk, v", backoff=Backoff(sleep=Sleeps()))

    assert sorted(i["pk"]["S"] for i in found) == sorted(k["pk"]["S"] for k in keys)
    assert [len(g) for g in client.gets] == [100, 1, 1, 50]  # two resends of the first chunk's last key
    with pytest.raises(StoreError, match="after 2 attempts"):
        get_items(
            Unprocessing(times=10**6), "t", keys[:3], what="r", backoff=Backoff(attempts=2, sleep=Sleeps())
        )


def test_resend_returns_what_is_still_undone() -> None:
    calls: list[list[int]] = []

    def send(pending: list[int]) -> list[int]:
        calls.append(pending)
        return pending[1:]

    assert resend(send, [1, 2, 3], backoff=Backoff(attempts=2, sleep=Sleeps())) == [3]
    assert resend(send, [1], backoff=Backoff(attempts=5, sleep=Sleeps())) == []
    assert calls == [[1, 2, 3], [2, 3], [1]]


def test_pauses_grow_up_to_the_cap_and_stay_random() -> None:
    sleeps = Sleeps()
    backoff = Backoff(base_s=0.1, cap_s=0.5, sleep=sleeps)
    for retry in range(8):
        for _ in range(20):
            backoff.pause(retry)
    caps = [min(0.5, 0.1 * 2**retry) for retry in range(8) for _ in range(20)]
    assert all(0 <= p <= cap for p, cap in zip(sleeps.pauses, caps, strict=True))
    assert len(set(sleeps.pauses)) > 100  # jitter, not a fixed schedule


def test_queries_read_every_page_through_the_paginator(store_aws: dict[str, str], ddb: Any) -> None:
    table = store_aws["TABLE_NAME"]
    pk = f"TEST#{uuid.uuid4()}"
    write_items(
        ddb,
        table,
        [{"PutRequest": {"Item": {"pk": {"S": pk}, "sk": {"S": f"{n:03d}"}}}} for n in range(7)],
        what="w",
    )
    params: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": pk}},
        "Limit": 3,
    }
    pages = list(query_pages(ddb, **params))
    assert [len(p["Items"]) for p in pages][:3] == [3, 3, 1]
    assert [i["sk"]["S"] for i in query_items(ddb, **params)] == [f"{n:03d}" for n in range(7)]
    start = {"pk": {"S": pk}, "sk": {"S": "004"}}
    assert [i["sk"]["S"] for i in query_items(ddb, **params, ExclusiveStartKey=start)] == ["005", "006"]

    class Spy:
        def __init__(self) -> None:
            self.operations: list[str] = []

        def get_paginator(self, operation: str) -> Any:
            self.operations.append(operation)
            return ddb.get_paginator(operation)

    spy = Spy()
    assert len(list(query_items(spy, **params))) == 7
    assert spy.operations == ["query"]


def test_a_failed_condition_is_none_and_other_errors_are_raised(store_aws: dict[str, str], ddb: Any) -> None:
    table = store_aws["TABLE_NAME"]
    item = {"pk": {"S": f"TEST#{uuid.uuid4()}"}, "sk": {"S": "ONCE"}}

    def create() -> Any:
        return ddb.put_item(TableName=table, Item=item, ConditionExpression="attribute_not_exists(pk)")

    assert conditional(create) is not None
    assert conditional(create) is None
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        conditional(lambda: ddb.put_item(TableName="no-such-table", Item=item))


def test_time_keys_sort_as_text_in_time_order() -> None:
    assert time_key(1_700_000_000.123456, "0001", "id") == "01700000000123456#0001#id"
    assert time_key(5.0) == "00000000005000000"
    times = [0.0, 0.000001, 9.999999, 10.0, 1_700_000_000.5, 1e11]
    assert sorted(times, key=lambda t: time_key(t)) == times


def test_store_errors_wraps_aws_failures_and_lets_callers_mistakes_through() -> None:
    with pytest.raises(StoreError) as wrapped, store_errors("reading x"):
        raise ClientError({"Error": {"Code": "Throttling", "Message": "slow down"}}, "GetItem")
    assert str(wrapped.value) == "reading x failed: ClientError"
    assert isinstance(wrapped.value.__cause__, ClientError)
    with pytest.raises(InvalidCursor), store_errors("reading x"):
        raise InvalidCursor("cursor: bad")
    with pytest.raises(StoreError) as inner, store_errors("outer"):
        raise StoreError("inner")
    assert str(inner.value) == "inner"  # not wrapped twice

    class KeyTableError(Exception):
        pass

    with pytest.raises(KeyTableError) as other, store_errors("get_item", KeyTableError):
        raise ConnectionError("refused")
    assert str(other.value) == "get_item failed: ConnectionError"
