"""Completion records in one DynamoDB table (single-table design).

```
completion  pk=COMPLETION#{id}   sk=COMPLETION   gsi1pk=SESSION#{session}  gsi1sk={created_us}#{index}#{id}
```
Beside each completion: its query index items (store/queries.py) and feedback (store/feedback.py);
campaign counters and session outcomes live in their own partitions (store/feedback.py).
The record itself is one JSON string attribute (`body`): records are read whole, never filtered on
inner fields, and this keeps floats exact and writes cheap. Low-level client calls with hand-built
attribute maps avoid the resource layer's Decimal conversion and import cost.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from handler.aws import LazyClient
from handler.store.base import StoreError
from handler.store.offload import Payloads, default_payloads, pack, unpack
from handler.store.records import CompletionRecord

if TYPE_CHECKING:
    from handler.store.feedback import Feedback, SessionOutcome, VariantStats
    from handler.store.queries import CompletionPage, CompletionQuery

_BATCH = 25


def completion_key(completion_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"COMPLETION#{completion_id}"}, "sk": {"S": "COMPLETION"}}


def session_sort_key(record: CompletionRecord) -> str:
    return f"{int(record.created * 1_000_000):017d}#{record.index:04d}#{record.completion_id}"


class DynamoCompletionStore:
    def __init__(
        self, table_name: str, client: Any = None, ttl_days: int = 0, payloads: Payloads | None = None
    ) -> None:
        self._table = table_name
        self._client = client
        self._ttl_days = ttl_days
        self._payloads = payloads

    @property
    def payloads(self) -> Payloads | None:
        """Where records too large for an item keep their body (store/offload.py): the stack's bucket."""
        return self._payloads if self._payloads is not None else default_payloads()

    client = LazyClient("dynamodb")

    def item_for(self, record: CompletionRecord) -> dict[str, Any]:
        item: dict[str, Any] = {
            **completion_key(record.completion_id),
            "gsi1pk": {"S": f"SESSION#{record.session_id}"},
            "gsi1sk": {"S": session_sort_key(record)},
            "type": {"S": "completion"},
            "project": {"S": record.project},
            "status": {"S": record.status},
            "created": {"N": repr(record.created)},
            **pack(record, self.payloads),  # `body`, and `payload` when it is offloaded to S3
        }
        if self._ttl_days:
            item["expires_at"] = {"N": str(int(record.created + self._ttl_days * 86400))}
        return item

    def put_completions(self, records: Sequence[CompletionRecord]) -> None:
        """Records, their query index items (store/queries.py), then their campaign counters."""
        from handler.store.feedback import count_requests
        from handler.store.queries import index_items

        requests = []
        for record in records:
            item = self.item_for(record)
            requests.append({"PutRequest": {"Item": item}})
            expires = int(item["expires_at"]["N"]) if "expires_at" in item else None
            requests.extend({"PutRequest": {"Item": i}} for i in index_items(record, expires))
        try:
            for start in range(0, len(requests), _BATCH):
                self._write_batch(requests[start : start + _BATCH])
            count_requests(self.client, self._table, records)  # last: a retried write counts once
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

    # --- feedback, outcomes, campaign results, queries (store/feedback.py, store/queries.py) ---

    def put_feedback(self, feedback: Feedback) -> None:
        from handler.store import feedback as fb

        self._guard("writing feedback", fb.put_feedback, self.client, self._table, feedback, self._ttl_days)

    def put_outcome(self, outcome: SessionOutcome) -> None:
        from handler.store import feedback as fb

        self._guard("writing an outcome", fb.put_outcome, self.client, self._table, outcome, self._ttl_days)

    def list_feedback(self, completion_id: str) -> list[Feedback]:
        from handler.store import feedback as fb

        found: list[Feedback] = self._guard(
            "reading feedback", fb.list_feedback, self.client, self._table, completion_id
        )
        return found

    def campaign_stats(self, campaign_id: str) -> list[VariantStats]:
        from handler.store import feedback as fb

        stats: list[VariantStats] = self._guard(
            "reading campaign results", fb.campaign_stats, self.client, self._table, campaign_id
        )
        return stats

    def query_completions(self, query: CompletionQuery) -> CompletionPage:
        from handler.store import queries

        page: CompletionPage = self._guard(
            "querying completions", queries.query_completions, self.client, self._table, query
        )
        return page

    @staticmethod
    def _guard(what: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except ValueError:
            raise  # a bad cursor: the caller's mistake, not the store's
        except Exception as exc:  # botocore ClientError, connection errors
            raise StoreError(f"{what} failed: {type(exc).__name__}") from exc

    def record_from(self, item: dict[str, Any]) -> CompletionRecord:
        return unpack(item, self.payloads)
