"""Completion records too large for a DynamoDB item (400 KB) keep their whole body in S3.

```
item     body = the record without its large parts (messages, system prompt, content, tool calls
                and runs, params), payload = "payloads/{project}/{completion_id}.json"
S3       payloads/{project}/{completion_id}.json = the whole record, exactly as it would have been
                                                     in `body`
```
Nothing is cut: a read of an offloaded item returns the S3 copy, byte for byte what was written.
The S3 object is written before the item, so an item never points at nothing; the key is fixed by
the completion id, so a retried write overwrites the same object.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Protocol

import orjson

from handler.aws import LazyClient
from handler.store.errors import StoreError, store_errors
from handler.store.records import CompletionRecord

# DynamoDB counts attribute names and values toward its 400 KB; the keys, index attributes and the
# trimmed body stay well under the rest.
OFFLOAD_ABOVE_BYTES = 300_000
PREFIX = "payloads"
_LARGE: dict[str, Any] = {
    "messages": [],
    "system_prompt": None,
    "content": "",
    "tool_calls": None,
    "tool_runs": [],
    "params": {},
    "reasoning_content": None,
    "thinking_blocks": None,
}


class Payloads(Protocol):
    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...


class S3Payloads:
    def __init__(self, bucket: str, client: Any = None) -> None:
        self.bucket = bucket
        self._client = client

    client = LazyClient("s3")

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType="application/json")

    def get(self, key: str) -> bytes:
        data: bytes = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return data


@cache
def default_payloads() -> S3Payloads | None:
    """The stack's bucket (BUCKET_NAME), or None where there is none (then nothing is offloaded)."""
    from handler.settings import get_settings

    bucket = get_settings().bucket_name
    return S3Payloads(bucket) if bucket else None


def payload_key(record: CompletionRecord) -> str:
    return f"{PREFIX}/{record.project}/{record.completion_id}.json"


def pack(record: CompletionRecord, payloads: Payloads | None) -> dict[str, Any]:
    """The `body` (and, when offloaded, `payload`) attributes of a record's item."""
    data = record.model_dump(mode="json")
    body = orjson.dumps(data)
    if len(body) <= OFFLOAD_ABOVE_BYTES:
        return {"body": {"S": body.decode()}}
    if payloads is None:
        raise StoreError(f"record of {len(body)} bytes is too large for DynamoDB and no bucket is set")
    key = payload_key(record)
    with store_errors("writing a large record to S3"):
        payloads.put(key, body)
    trimmed = {**data, **_LARGE}
    return {"body": {"S": orjson.dumps(trimmed).decode()}, "payload": {"S": key}}


def unpack(item: dict[str, Any], payloads: Payloads | None) -> CompletionRecord:
    """The whole record of an item, from S3 when its large parts were offloaded."""
    pointer = item.get("payload")
    if pointer is None:
        return CompletionRecord.model_validate(orjson.loads(item["body"]["S"]))
    if payloads is None:
        raise StoreError("a stored record lives in S3 but no bucket is set")
    with store_errors("reading a large record from S3"):
        data = payloads.get(pointer["S"])
    return CompletionRecord.model_validate(orjson.loads(data))
