"""Usage counters straight through the store: each request counted once, however often its records
are written (the store-retry queue redelivers, a retry follows a partial failure), and requests
that are not stored counted from their numbers alone."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from handler.store.counting import UsageRow
from handler.store.errors import StoreError
from tests.reliability.conftest import Refusing

pytestmark = pytest.mark.unit

DAY = "2023-11-14"  # of created=1_700_000_000


def report(table: str, project: str) -> list[UsageRow]:
    from handler.store.usage import DynamoUsageStore

    return DynamoUsageStore(table).usage(project, DAY, DAY)


def request(make_record: Callable[..., Any], project: str, n: int = 1, **fields: Any) -> list[Any]:
    """One request's records: `n` choices, the prompt's tokens on each, its cost split among them."""
    request_id = f"chatcmpl-{uuid.uuid4().hex}"
    return [
        make_record(
            project=project,
            model=f"{project}/echo",
            request_id=request_id,
            index=i,
            usage={
                "prompt_tokens": 10,
                "completion_tokens": 3 + i,
                "total_tokens": 13 + i,
                "cached_tokens": 4,
            },
            cost_usd=0.001,
            **fields,
        )
        for i in range(n)
    ]


def items_of(ddb: Any, table: str, pk: str) -> list[dict[str, Any]]:
    found = ddb.query(
        TableName=table, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": pk}}
    )
    return list(found["Items"])


def test_writing_the_same_records_again_counts_nothing(
    store: Any, store_aws: dict[str, str], make_record: Callable[..., Any]
) -> None:
    project = f"p-{uuid.uuid4().hex[:8]}"
    records = request(make_record, project, n=3)
    store.put_completions(records)
    counted = report(store_aws["TABLE_NAME"], project)
    store.put_completions(records)  # the retry queue delivering the message twice
    store.put_completions(list(reversed(records)))
    assert report(store_aws["TABLE_NAME"], project) == counted
    [row] = counted
    assert (row.requests, row.unstored_requests, row.prompt_tokens, row.completion_tokens) == (1, 0, 10, 12)
    assert (row.cached_tokens, row.cost_usd, row.unpriced) == (4, pytest.approx(0.003), 0)


def test_a_retry_after_the_usage_write_failed_counts_the_request_once(
    store_aws: dict[str, str], ddb: Any, make_record: Callable[..., Any]
) -> None:
    """The records are written, the usage transaction is refused (the write raises, so the service
    queues the records): the queue's replay counts the request, and a second replay nothing."""
    from handler.store.dynamodb import DynamoCompletionStore

    project = f"p-{uuid.uuid4().hex[:8]}"
    records = request(make_record, project, n=2)
    refusing = Refusing(ddb, "transact_write_items")
    store = DynamoCompletionStore(store_aws["TABLE_NAME"], client=refusing)
    with pytest.raises(StoreError):
        store.put_completions(records)
    assert store.get_completion(records[0].completion_id) is not None  # the records went
    assert report(store_aws["TABLE_NAME"], project) == []
    refusing.refuse = False
    store.put_completions(records)
    store.put_completions(records)
    [row] = report(store_aws["TABLE_NAME"], project)
    assert (row.requests, row.completion_tokens) == (1, 7)


def test_the_counted_marker_expires_with_the_records(
    store_aws: dict[str, str], ddb: Any, make_record: Callable[..., Any]
) -> None:
    from handler.store.dynamodb import DynamoCompletionStore

    table = store_aws["TABLE_NAME"]
    project = f"p-{uuid.uuid4().hex[:8]}"
    kept = request(make_record, project)
    DynamoCompletionStore(table, ttl_days=7).put_completions(kept)
    [record_item] = [
        i for i in items_of(ddb, table, f"COMPLETION#{kept[0].completion_id}") if i["sk"]["S"] == "COMPLETION"
    ]
    [marker] = items_of(ddb, table, f"REQUEST#{kept[0].request_id}")
    assert marker["sk"]["S"] == "COUNTED#USAGE"
    assert marker["expires_at"] == record_item["expires_at"] == {"N": str(1_700_000_000 + 7 * 86400)}
    unstored = request(make_record, project)
    DynamoCompletionStore(table, ttl_days=7).count_usage(unstored)
    [marker] = items_of(ddb, table, f"REQUEST#{unstored[0].request_id}")
    assert marker["expires_at"] == {"N": str(1_700_000_000 + 7 * 86400)}
    forever = request(make_record, project)
    DynamoCompletionStore(table).put_completions(forever)
    [marker] = items_of(ddb, table, f"REQUEST#{forever[0].request_id}")
    assert "expires_at" not in marker


def test_an_unstored_request_adds_its_numbers_and_nothing_else(
    store: Any, store_aws: dict[str, str], ddb: Any, make_record: Callable[..., Any]
) -> None:
    table = store_aws["TABLE_NAME"]
    project = f"p-{uuid.uuid4().hex[:8]}"
    stored = request(make_record, project, n=2)
    store.put_completions(stored)
    secret = f"secret words {uuid.uuid4()}"
    unstored = request(
        make_record, project, n=2, content=secret, messages=[{"role": "user", "content": secret}]
    )
    store.count_usage(unstored)
    store.count_usage(unstored)  # counted once, like a stored request
    [row] = report(table, project)
    assert (row.requests, row.unstored_requests, row.prompt_tokens, row.completion_tokens) == (2, 1, 20, 14)
    assert row.cost_usd == pytest.approx(0.004)
    assert store.get_completion(unstored[0].completion_id) is None
    written = ddb.scan(TableName=table)["Items"]
    assert secret not in json.dumps(written)
    assert not [
        i
        for i in written
        if unstored[0].request_id in json.dumps(i) and i["pk"]["S"] != f"REQUEST#{unstored[0].request_id}"
    ]


def test_a_request_with_more_rows_than_a_transaction_holds_is_counted_whole_and_once(
    store: Any, store_aws: dict[str, str], make_record: Callable[..., Any]
) -> None:
    """A request's records share their day, model and key (one row); records of one request id
    that do not (101 models here) are counted in transactions of at most 100 writes."""
    project = f"p-{uuid.uuid4().hex[:8]}"
    request_id = f"chatcmpl-{uuid.uuid4().hex}"
    records = [
        make_record(project=project, model=f"{project}/m{i:03d}", request_id=request_id) for i in range(101)
    ]
    store.count_usage(records)  # the counting is the same for stored records, without their writes
    store.count_usage(records)
    rows = report(store_aws["TABLE_NAME"], project)
    assert len(rows) == 101 and {(r.requests, r.unstored_requests) for r in rows} == {(1, 1)}
