"""Usage aggregates in the single table: what each project used, by day, model and key.

```
usage counter  pk=USAGE#{project}      sk=DAY#{YYYY-MM-DD}#{model}#{key_id}
               requests, unstored_requests, prompt_tokens, completion_tokens, cached_tokens,
               cost_usd, unpriced
counted        pk=REQUEST#{request_id}  sk=COUNTED#USAGE       (a request's usage is counted once)
```
Every answered request is counted, stored or not. A stored request's records add to the counters
when they are written (`DynamoCompletionStore.put_completions`, also when the retry queue replays
them); a `store: false` request's records are built but never written, and only their numbers are
added (`DynamoCompletionStore.count_usage`), with `unstored_requests` saying so: `requests -
unstored_requests` is what the stored records add up to. A report is one Query on the project's
partition over a range of days: it never scans the records.

A request counts once: its counter updates and a `counted` marker (put only if absent, and expiring
with the records) go in one transaction, so a replay (a store-retry message delivered twice, a
retry after a partial failure) counts nothing. Its choices share its prompt, so the prompt and
cached tokens count once per request, completion tokens and cost per record (each choice's record
carries its share of the cost).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from handler.aws import LazyClient
from handler.store.counting import UsageRow
from handler.store.dynamo import DynamoClient, Item, decimal_number, query_items
from handler.store.errors import store_errors
from handler.store.once import transact_once
from handler.store.records import CompletionRecord

NO_KEY = "-"
MAX_ROWS = 99  # a transaction holds 100 writes: the marker and the rows


def day_of(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%d")


def rows_of(records: Sequence[CompletionRecord], stored: bool = True) -> list[tuple[str, UsageRow]]:
    """(project, the row to add) per (project, day, model, key) of `records`, in key order."""
    groups: dict[tuple[str, str, str, str], list[CompletionRecord]] = defaultdict(list)
    for r in records:
        groups[(r.project, day_of(r.created), r.model, r.key_id or NO_KEY)].append(r)
    rows = []
    for (project, day, model, key_id), group in sorted(groups.items()):
        firsts = [r for r in group if r.index == 0]
        rows.append(
            (
                project,
                UsageRow(
                    day=day,
                    model=model,
                    key_id=key_id,
                    requests=len(firsts),
                    unstored_requests=0 if stored else len(firsts),
                    prompt_tokens=sum(r.usage.prompt_tokens for r in firsts),
                    completion_tokens=sum(r.usage.completion_tokens for r in group),
                    cached_tokens=sum(r.usage.cached_tokens or 0 for r in firsts),
                    cost_usd=round(sum(r.cost_usd or 0.0 for r in group), 10),
                    unpriced=sum(r.cost_usd is None for r in group),
                ),
            )
        )
    return rows


def row_update(table: str, project: str, row: UsageRow) -> dict[str, Any]:
    """The transaction write adding `row` to its counter item."""
    return {
        "Update": {
            "TableName": table,
            "Key": {"pk": {"S": f"USAGE#{project}"}, "sk": {"S": f"DAY#{row.day}#{row.model}#{row.key_id}"}},
            "UpdateExpression": (
                "SET #day = :day, #model = :model, key_id = :key ADD requests :requests, "
                "unstored_requests :unstored, prompt_tokens :prompt, completion_tokens :completion, "
                "cached_tokens :cached, cost_usd :cost, unpriced :unpriced"
            ),
            "ExpressionAttributeNames": {"#day": "day", "#model": "model"},
            "ExpressionAttributeValues": {
                ":day": {"S": row.day},
                ":model": {"S": row.model},
                ":key": {"S": row.key_id},
                ":requests": {"N": str(row.requests)},
                ":unstored": {"N": str(row.unstored_requests)},
                ":prompt": {"N": str(row.prompt_tokens)},
                ":completion": {"N": str(row.completion_tokens)},
                ":cached": {"N": str(row.cached_tokens)},
                ":cost": decimal_number(row.cost_usd),
                ":unpriced": {"N": str(row.unpriced)},
            },
        }
    }


def marker(request_id: str, part: int, expires: int | None) -> Item:
    """The item saying that a request's usage (its `part`-th group of rows) is counted."""
    item: Item = {
        "pk": {"S": f"REQUEST#{request_id}"},
        "sk": {"S": "COUNTED#USAGE" if part == 0 else f"COUNTED#USAGE#{part}"},
        "type": {"S": "counted"},
    }
    if expires is not None:
        item["expires_at"] = {"N": str(expires)}
    return item


def count_usage(
    client: DynamoClient,
    table: str,
    records: Sequence[CompletionRecord],
    ttl_days: int = 0,
    stored: bool = True,
) -> None:
    """Add `records` to their aggregate counters, once per request: its rows (one per day, model
    and key: a request's records share them, so one row) and its marker, which expires with the
    records (`ttl_days`), in one transaction, one round trip. `stored`: False for a request whose
    records are not written (counted in `unstored_requests` too)."""
    requests: dict[str, list[CompletionRecord]] = defaultdict(list)
    for r in records:
        requests[r.request_id].append(r)
    for request_id, group in requests.items():
        expires = int(group[0].created + ttl_days * 86400) if ttl_days else None  # as the records'
        rows = rows_of(group, stored)
        for part, start in enumerate(range(0, len(rows), MAX_ROWS)):  # more than one: never in practice
            writes = [row_update(table, project, row) for project, row in rows[start : start + MAX_ROWS]]
            transact_once(client, table, marker(request_id, part, expires), writes)


class DynamoUsageStore:
    """`store.counting.UsageStore` over the table."""

    def __init__(self, table_name: str, client: DynamoClient | None = None) -> None:
        self._table = table_name
        self._client = client

    client = LazyClient("dynamodb")

    def usage(self, project: str, first_day: str, last_day: str) -> list[UsageRow]:
        with store_errors("reading usage"):
            items = query_items(
                self.client,
                TableName=self._table,
                KeyConditionExpression="pk = :pk AND sk BETWEEN :first AND :last",
                ExpressionAttributeValues={
                    ":pk": {"S": f"USAGE#{project}"},
                    ":first": {"S": f"DAY#{first_day}#"},
                    ":last": {"S": f"DAY#{last_day}#\uffff"},
                },
            )
            return [
                UsageRow(
                    day=i["day"]["S"],
                    model=i["model"]["S"],
                    key_id=i["key_id"]["S"],
                    requests=int(i.get("requests", {}).get("N", "0")),
                    unstored_requests=int(i.get("unstored_requests", {}).get("N", "0")),
                    prompt_tokens=int(i.get("prompt_tokens", {}).get("N", "0")),
                    completion_tokens=int(i.get("completion_tokens", {}).get("N", "0")),
                    cached_tokens=int(i.get("cached_tokens", {}).get("N", "0")),
                    cost_usd=float(i.get("cost_usd", {}).get("N", "0")),
                    unpriced=int(i.get("unpriced", {}).get("N", "0")),
                )
                for i in items
            ]
