"""Records DynamoDB refused, kept on a queue until the StoreRetryFunction writes them.

When the write of a request's records fails (throttling, an outage), the client still gets its
answer; the records go to `STORE_RETRY_QUEUE_URL`, one message per request (so the drain writes
them together, and counts the request once). A message too large for SQS carries a pointer to a
copy under `payloads/retry/` instead:
```
{"v": 1, "records": [<record>, ...]}        or        {"v": 1, "payload": "payloads/retry/<request_id>.json"}
```
The drain (entrypoints/store_retry.py) writes them with the same store, which is idempotent (a
record is put under its own key), so a message delivered twice does no harm.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from handler.aws import LazyClient
from handler.store.offload import PREFIX, Payloads
from handler.store.records import CompletionRecord

# SQS takes up to 256 KiB per message; keep a margin for the envelope.
MAX_INLINE_BYTES = 200_000
VERSION = 1


class RetryQueueError(Exception):
    """The records could not be queued either."""


class StoreRetryQueue:
    def __init__(self, queue_url: str, payloads: Payloads | None, client: Any = None) -> None:
        self.queue_url = queue_url
        self._payloads = payloads
        self._client = client

    client = LazyClient("sqs")

    def enqueue(self, records: Sequence[CompletionRecord]) -> None:
        """Queue one request's records for a later write. Raises RetryQueueError when that fails too."""
        if not records:
            return
        data = orjson.dumps([r.model_dump(mode="json") for r in records])
        try:
            if len(data) <= MAX_INLINE_BYTES:
                body = b'{"v":%d,"records":%s}' % (VERSION, data)
            else:
                if self._payloads is None:
                    raise RetryQueueError("records too large for a queue message and no bucket is set")
                key = f"{PREFIX}/retry/{records[0].request_id}-{records[0].completion_id}.json"
                self._payloads.put(key, data)
                body = orjson.dumps({"v": VERSION, "payload": key})
            self.client.send_message(QueueUrl=self.queue_url, MessageBody=body.decode())
        except RetryQueueError:
            raise
        except Exception as exc:  # botocore ClientError, connection errors
            raise RetryQueueError(f"queueing records for a retry failed: {type(exc).__name__}") from exc


def decode(body: str, payloads: Payloads | None) -> list[CompletionRecord]:
    """The records of one retry message (fetched from S3 when the message points there)."""
    message = orjson.loads(body)
    if not isinstance(message, dict) or message.get("v") != VERSION:
        raise ValueError("not a store-retry message")
    if "payload" in message:
        if payloads is None:
            raise ValueError("the message points to S3 but no bucket is set")
        raw = orjson.loads(payloads.get(message["payload"]))
    else:
        raw = message["records"]
    return [CompletionRecord.model_validate(r) for r in raw]
