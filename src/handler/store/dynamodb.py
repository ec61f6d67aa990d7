"""Completion records in one DynamoDB table (single-table design).

```
completion  pk=COMPLETION#{id}   sk=COMPLETION   gsi1pk=SESSION#{session}  gsi1sk={created_us}#{index}#{id}
```
The record itself is one JSON string attribute (`body`): records are read whole, never filtered on
inner fields, and this keeps floats exact and writes cheap. Low-level client calls with hand-built
attribute maps avoid the resource layer's Decimal conversion and import cost.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson

from handler.store.base import StoreError
from handler.store.records import CompletionRecord

_BATCH = 25


def completion_key(completion_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"COMPLETION#{completion_id}"}, "sk": {"S": "COMPLETION"}}


def session_sort_key(record: CompletionRecord) -> str:
    return f"{int(record.created * 1_000_000):017d}#{record.index:04d}#{record.completion_id}"


class DynamoCompletionStore:
    def __init__(self, table_name: str, client: Any = None, ttl_days: int = 0) -> None:
        self._table = table_name
        self._client = client
        self._ttl_days = ttl_days

    @property
    def client(self) -> Any:
        if self._client is None:
            from handler import aws

            self._client = aws.client("dynamodb")
        return self._client

    def item_for(self, record: CompletionRecord) -> dict[str, Any]:
        item: dict[str, Any] = {
            **completion_key(record.completion_id),
            "gsi1pk": {"S": f"SESSION#{record.session_id}"},
            "gsi1sk": {"S": session_sort_key(record)},
            "type": {"S": "completion"},
            "project": {"S": record.project},
            "status": {"S": record.status},
            "created": {"N": repr(record.created)},
            "body": {"S": orjson.dumps(record.model_dump(mode="json")).decode()},
        }
        if self._ttl_days:
            item["expires_at"] = {"N": str(int(record.created + self._ttl_days * 86400))}
        return item

    def put_completions(self, records: Sequence[CompletionRecord]) -> None:
        requests = [{"PutRequest": {"Item": self.item_for(r)}} for r in records]
        try:
            for start in range(0, len(requests), _BATCH):
                self._write_batch(requests[start : start + _BATCH])
        except StoreError:
            raise
        except Exception as exc:  # botocore ClientError, connection errors
            raise StoreError(f"writing completion records failed: {type(exc).__name__}") from exc

    def _write_batch(self, batch: list[dict[str, Any]]) -> None:
        pending = {self._table: batch}
        for attempt in range(6):
            response = self.client.batch_write_item(RequestItems=pending)
            pending = response.get("UnprocessedItems") or {}
            if not pending:
                return
            time.sleep(min(0.05 * 2**attempt, 0.8))
        raise StoreError("DynamoDB left items unprocessed after retries")

    def get_completion(self, completion_id: str) -> CompletionRecord | None:
        response = self.client.get_item(
            TableName=self._table, Key=completion_key(completion_id), ConsistentRead=True
        )
        item = response.get("Item")
        return self.record_from(item) if item else None

    def list_session(self, session_id: str) -> list[CompletionRecord]:
        records: list[CompletionRecord] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "GSI1",
            "KeyConditionExpression": "gsi1pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"SESSION#{session_id}"}},
        }
        while True:
            response = self.client.query(**kwargs)
            records.extend(self.record_from(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return records
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def record_from(self, item: dict[str, Any]) -> CompletionRecord:
        return CompletionRecord.model_validate(orjson.loads(item["body"]["S"]))
