"""Listing a project's stored completions by label, tag, user and time, newest first, through GSI2.

Each stored completion (one per choice) gets small index items beside it, one per way it can be
found; a query reads one index partition in sort-key order, never the table:
```
index  pk=COMPLETION#{id}  sk=IDX#{n}  gsi2sk={created_us}#{index}#{id}  gsi2pk=Q#{project}#all
                                                                        gsi2pk=Q#{project}#user#{user}
                                                                        gsi2pk=Q#{project}#label#["{k}","{v}"]
                                                                        gsi2pk=Q#{project}#tag#{tag}
```
Index items carry keys only (not the record): a listing is one Query on the index plus one
BatchGetItem for the page's records, and a completion with many labels costs little to write.
The time range is part of the key condition. When a query combines several filters, the most
selective-looking one (user, else a label, else a tag) is read from the index and the others are
checked on the records, so such a page can come back short (an empty page without a cursor ends it).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator

import orjson

from handler.store.dynamo import DynamoClient, Item, get_items, query_items, time_key
from handler.store.errors import InvalidCursor
from handler.store.layout import completion_key, completion_sort_key
from handler.store.offload import default_payloads, unpack
from handler.store.records import CompletionRecord
from handler.store.values import CompletionPage, CompletionQuery

_MAX_KEY_BYTES = 1024  # a GSI partition key may hold 2048 bytes; long label values are hashed


def partition(project: str, kind: str, value: str | tuple[str, str] | None = None) -> str:
    """The GSI2 partition of one way of finding a project's completions."""
    if value is None:
        return f"Q#{project}#{kind}"
    text = orjson.dumps(list(value)).decode() if isinstance(value, tuple) else value
    key = f"Q#{project}#{kind}#{text}"
    if len(key.encode()) > _MAX_KEY_BYTES:
        key = f"Q#{project}#{kind}#sha256:{hashlib.sha256(text.encode()).hexdigest()}"
    return key


def partitions_of(record: CompletionRecord) -> list[str]:
    keys = [partition(record.project, "all")]
    if record.user:
        keys.append(partition(record.project, "user", record.user))
    keys.extend(partition(record.project, "label", (k, v)) for k, v in record.labels.items())
    keys.extend(partition(record.project, "tag", t) for t in dict.fromkeys(record.tags))
    return keys


def index_items(record: CompletionRecord, expires_at: int | None) -> list[Item]:
    """The index items written with a completion record (same partition, sort keys `IDX#n`)."""
    sk = completion_sort_key(record.created, record.index, record.completion_id)
    items = []
    for n, pk in enumerate(partitions_of(record)):
        item: Item = {
            "pk": {"S": f"COMPLETION#{record.completion_id}"},
            "sk": {"S": f"IDX#{n:04d}"},
            "gsi2pk": {"S": pk},
            "gsi2sk": {"S": sk},
            "type": {"S": "completion_index"},
        }
        if expires_at is not None:
            item["expires_at"] = {"N": str(expires_at)}
        items.append(item)
    return items


def index_partition(query: CompletionQuery) -> str:
    """The one partition a query reads: its user, else its first label, else its first tag."""
    if query.user is not None:
        return partition(query.project, "user", query.user)
    if query.labels:
        key, value = next(iter(query.labels.items()))
        return partition(query.project, "label", (key, value))
    if query.tags:
        return partition(query.project, "tag", query.tags[0])
    return partition(query.project, "all")


def _fingerprint(query: CompletionQuery) -> str:
    what = [index_partition(query), sorted(query.labels.items()), sorted(query.tags), query.user]
    return hashlib.sha256(orjson.dumps(what)).hexdigest()[:16]


def encode_cursor(query: CompletionQuery, last_sort_key: str) -> str:
    raw = orjson.dumps({"k": last_sort_key, "f": _fingerprint(query)})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(query: CompletionQuery, cursor: str) -> str:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        key, fingerprint = data["k"], data["f"]
    except Exception:
        raise InvalidCursor("cursor: not a cursor this API returned") from None
    if fingerprint != _fingerprint(query) or not isinstance(key, str):
        raise InvalidCursor("cursor: it belongs to a query with other filters")
    return key


def _bounds(query: CompletionQuery) -> tuple[str, str]:
    low = time_key(query.since) if query.since is not None else "0"
    high = time_key(query.until) if query.until is not None else "~"
    return low, high


def _index_keys(
    client: DynamoClient, table: str, query: CompletionQuery, after: str | None
) -> Iterator[tuple[str, str]]:
    """(gsi2sk, completion id) of the index partition, newest first, strictly older than `after`."""
    low, high = _bounds(query)
    if after is not None:
        high = min(high, after)
    if high <= low:
        return
    items = query_items(
        client,
        TableName=table,
        IndexName="GSI2",
        KeyConditionExpression="gsi2pk = :pk AND gsi2sk BETWEEN :low AND :high",
        ExpressionAttributeValues={
            ":pk": {"S": index_partition(query)},
            ":low": {"S": low},
            ":high": {"S": high},
        },
        ScanIndexForward=False,
        ProjectionExpression="gsi2sk",
        Limit=max(query.limit + 1, 25),
    )
    for item in items:
        sk = item["gsi2sk"]["S"]
        if sk != after:
            yield sk, sk.rsplit("#", 1)[1]


def _get_records(client: DynamoClient, table: str, ids: list[str]) -> dict[str, CompletionRecord]:
    items = get_items(
        client,
        table,
        [completion_key(cid) for cid in ids],
        what="reading a page of completions",
        projection="body, payload",
    )
    payloads = default_payloads()  # large records live in S3 (store/offload.py)
    records = (unpack(item, payloads) for item in items)
    return {record.completion_id: record for record in records}


def query_completions(client: DynamoClient, table: str, query: CompletionQuery) -> CompletionPage:
    """One page of the project's completions matching `query`, newest first."""
    after = decode_cursor(query, query.cursor) if query.cursor else None
    records: list[CompletionRecord] = []
    keys = _index_keys(client, table, query, after)
    batch: list[tuple[str, str]] = []
    last_key: str | None = None
    exhausted = False
    while len(records) < query.limit:
        batch = []
        for key in keys:
            batch.append(key)
            if len(batch) >= query.limit - len(records):
                break
        if not batch:
            exhausted = True
            break
        found = _get_records(client, table, [cid for _, cid in batch])
        for sk, cid in batch:
            last_key = sk
            record = found.get(cid)
            if record is not None and query.matches(record):
                records.append(record)
    if not exhausted:
        exhausted = next(keys, None) is None
    cursor = None if exhausted or last_key is None else encode_cursor(query, last_key)
    return CompletionPage(records, cursor)
