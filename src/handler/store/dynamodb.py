"""Completion records in one DynamoDB table (single-table design).

```
completion  pk=COMPLETION#{id}   sk=COMPLETION   gsi1pk=SESSION#{project}#{session}  gsi1sk={created_us}#{index}#{id}
session     pk=SESSION#{session}  sk=PROJECT#{project}   (one per project that used the session id)
```
A session belongs to its project: clients choose session ids, so the same id in two projects is two
sessions, and nothing one project writes changes what another reads. The `PROJECT#` items say which
projects hold a session id, so a caller that may use every project (the dev key) finds them with one
Query on the id's partition instead of a scan; a scoped key reads its own projects' sessions directly.
Beside each completion: its query index items (store/queries.py) and feedback (store/feedback.py);
campaign counters and session outcomes live in their own partitions (store/feedback.py).
The record itself is one JSON string attribute (`body`): records are read whole, never filtered on
inner fields, and this keeps floats exact and writes cheap. Low-level client calls with hand-built
attribute maps avoid the resource layer's Decimal conversion and import cost.
"""

from __future__ import annotations

from collections.abc import Sequence

from handler.aws import LazyClient
from handler.store import campaigns as cs
from handler.store import feedback as fb
from handler.store import queries, usage
from handler.store.dynamo import DynamoClient, Item, query_items, write_items
from handler.store.errors import store_errors
from handler.store.layout import completion_key, completion_sort_key
from handler.store.offload import Payloads, default_payloads, pack, unpack
from handler.store.records import CompletionRecord
from handler.store.values import (
    CampaignCounters,
    CampaignState,
    Comparison,
    CompletionPage,
    CompletionQuery,
    Feedback,
    SessionOutcome,
    VariantStats,
)


def session_partition(project: str, session_id: str) -> str:
    """GSI1's partition of one project's session (the project first: ids are the clients')."""
    return f"SESSION#{project}#{session_id}"


def session_item(record: CompletionRecord, expires_at: int | None) -> Item:
    """The item saying that `record.project` holds a session of that id."""
    item: Item = {
        "pk": {"S": f"SESSION#{record.session_id}"},
        "sk": {"S": f"PROJECT#{record.project}"},
        "type": {"S": "session"},
    }
    if expires_at is not None:
        item["expires_at"] = {"N": str(expires_at)}
    return item


class DynamoCompletionStore:
    """Both store ports (store/base.py): completions, and feedback with campaign results."""

    def __init__(
        self,
        table_name: str,
        client: DynamoClient | None = None,
        ttl_days: int = 0,
        payloads: Payloads | None = None,
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

    def item_for(self, record: CompletionRecord) -> Item:
        item: Item = {
            **completion_key(record.completion_id),
            "gsi1pk": {"S": session_partition(record.project, record.session_id)},
            "gsi1sk": {"S": completion_sort_key(record.created, record.index, record.completion_id)},
            "type": {"S": "completion"},
            "project": {"S": record.project},
            "status": {"S": record.status},
            "created": {"N": repr(record.created)},
            **pack(record, self.payloads),  # `body`, and `payload` when it is offloaded to S3
        }
        if self._ttl_days:
            item["expires_at"] = {"N": str(int(record.created + self._ttl_days * 86400))}
        return item

    # --- completions (CompletionStore) -----------------------------------------------------------

    def put_completions(self, records: Sequence[CompletionRecord]) -> None:
        """Records, their query index items (store/queries.py), then their campaign and usage
        counters (each once per request: a replay of the same records counts nothing)."""
        with store_errors("writing completion records"):
            requests: list[Item] = []
            expires: int | None = None
            sessions: dict[tuple[str, str], Item] = {}  # one item per key: a batch refuses duplicates
            for record in records:
                item = self.item_for(record)
                requests.append({"PutRequest": {"Item": item}})
                expires = int(item["expires_at"]["N"]) if "expires_at" in item else None
                requests.extend({"PutRequest": {"Item": i}} for i in queries.index_items(record, expires))
                sessions[(record.project, record.session_id)] = session_item(record, expires)
            requests.extend({"PutRequest": {"Item": i}} for i in sessions.values())
            write_items(self.client, self._table, requests, what="writing completion records")
            fb.count_requests(self.client, self._table, records, expires)  # last; counts once per request
            usage.count_usage(self.client, self._table, records, self._ttl_days)  # once per request

    def count_usage(self, records: Sequence[CompletionRecord]) -> None:
        """A `store: false` request's usage, numbers only (nothing of its content is written)."""
        with store_errors("counting usage"):
            usage.count_usage(self.client, self._table, records, self._ttl_days, stored=False)

    def get_completion(self, completion_id: str) -> CompletionRecord | None:
        with store_errors("reading a completion"):
            response = self.client.get_item(
                TableName=self._table, Key=completion_key(completion_id), ConsistentRead=True
            )
            item = response.get("Item")
            return self.record_from(item) if item else None

    def list_session(self, project: str, session_id: str) -> list[CompletionRecord]:
        with store_errors("reading a session"):
            items = query_items(
                self.client,
                TableName=self._table,
                IndexName="GSI1",
                KeyConditionExpression="gsi1pk = :pk",
                ExpressionAttributeValues={":pk": {"S": session_partition(project, session_id)}},
            )
            return [self.record_from(item) for item in items]

    def session_projects(self, session_id: str) -> list[str]:
        with store_errors("reading a session"):
            items = query_items(
                self.client,
                TableName=self._table,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :sk)",
                ExpressionAttributeValues={":pk": {"S": f"SESSION#{session_id}"}, ":sk": {"S": "PROJECT#"}},
                ProjectionExpression="sk",
            )
            return sorted(item["sk"]["S"].removeprefix("PROJECT#") for item in items)

    def query_completions(self, query: CompletionQuery) -> CompletionPage:
        with store_errors("querying completions"):
            return queries.query_completions(self.client, self._table, query)

    # --- feedback, outcomes, campaign results (FeedbackStore) ------------------------------------

    def put_feedback(self, feedback: Feedback) -> None:
        with store_errors("writing feedback"):
            fb.put_feedback(self.client, self._table, feedback, self._ttl_days)

    def put_outcome(self, outcome: SessionOutcome) -> None:
        with store_errors("writing an outcome"):
            fb.put_outcome(self.client, self._table, outcome, self._ttl_days)

    def list_feedback(self, completion_id: str) -> list[Feedback]:
        with store_errors("reading feedback"):
            return fb.list_feedback(self.client, self._table, completion_id)

    def campaign_stats(self, campaign_id: str) -> list[VariantStats]:
        with store_errors("reading campaign results"):
            return fb.campaign_stats(self.client, self._table, campaign_id)

    # --- comparisons, campaign state (store/campaigns.py) -----------------------------------------

    def put_comparison(self, comparison: Comparison) -> None:
        with store_errors("writing a comparison"):
            cs.put_comparison(self.client, self._table, comparison, self._ttl_days)

    def campaign_counters(self, campaign_id: str) -> CampaignCounters:
        with store_errors("reading campaign results"):
            return cs.campaign_counters(self.client, self._table, campaign_id)

    def campaign_state(self, campaign_id: str) -> CampaignState | None:
        with store_errors("reading a campaign's state"):
            return cs.campaign_state(self.client, self._table, campaign_id)

    def end_campaign(self, state: CampaignState) -> CampaignState:
        with store_errors("ending a campaign"):
            return cs.end_campaign(self.client, self._table, state)

    def record_from(self, item: Item) -> CompletionRecord:
        return unpack(item, self.payloads)
