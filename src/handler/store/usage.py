"""Usage aggregates in the single table: what each project used, by day, model and key.

```
usage counter  pk=USAGE#{project}  sk=DAY#{YYYY-MM-DD}#{model}#{key_id}
               requests, prompt_tokens, completion_tokens, cached_tokens, cost_usd, unpriced
```
Written with the records (`DynamoCompletionStore.put_completions`, also when the retry queue
replays them), read back by one Query on the project's partition over a range of days: a report
never scans the records, and it adds up to them. A request counts once; its choices share its
prompt, so the prompt and cached tokens count once per request, completion tokens and cost per
record (each choice's record carries its share of the cost).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

from handler.aws import LazyClient
from handler.store.counting import UsageRow
from handler.store.dynamo import DynamoClient, decimal_number, query_items
from handler.store.errors import store_errors
from handler.store.records import CompletionRecord

NO_KEY = "-"


def day_of(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%d")


def rows_of(records: Sequence[CompletionRecord]) -> list[tuple[str, UsageRow]]:
    """(project, the row to add) per (project, day, model, key) of `records`."""
    groups: dict[tuple[str, str, str, str], list[CompletionRecord]] = defaultdict(list)
    for r in records:
        groups[(r.project, day_of(r.created), r.model, r.key_id or NO_KEY)].append(r)
    rows = []
    for (project, day, model, key_id), group in groups.items():
        firsts = [r for r in group if r.index == 0]
        rows.append(
            (
                project,
                UsageRow(
                    day=day,
                    model=model,
                    key_id=key_id,
                    requests=len(firsts),
                    prompt_tokens=sum(r.usage.prompt_tokens for r in firsts),
                    completion_tokens=sum(r.usage.completion_tokens for r in group),
                    cached_tokens=sum(r.usage.cached_tokens or 0 for r in firsts),
                    cost_usd=round(sum(r.cost_usd or 0.0 for r in group), 10),
                    unpriced=sum(r.cost_usd is None for r in group),
                ),
            )
        )
    return rows


def count_usage(client: DynamoClient, table: str, records: Sequence[CompletionRecord]) -> None:
    """Add `records` to their aggregate counters: one UpdateItem per (day, model, key), usually one."""
    for project, row in rows_of(records):
        client.update_item(
            TableName=table,
            Key={"pk": {"S": f"USAGE#{project}"}, "sk": {"S": f"DAY#{row.day}#{row.model}#{row.key_id}"}},
            UpdateExpression=(
                "SET #day = :day, #model = :model, key_id = :key ADD requests :requests, "
                "prompt_tokens :prompt, completion_tokens :completion, cached_tokens :cached, "
                "cost_usd :cost, unpriced :unpriced"
            ),
            ExpressionAttributeNames={"#day": "day", "#model": "model"},
            ExpressionAttributeValues={
                ":day": {"S": row.day},
                ":model": {"S": row.model},
                ":key": {"S": row.key_id},
                ":requests": {"N": str(row.requests)},
                ":prompt": {"N": str(row.prompt_tokens)},
                ":completion": {"N": str(row.completion_tokens)},
                ":cached": {"N": str(row.cached_tokens)},
                ":cost": decimal_number(row.cost_usd),
                ":unpriced": {"N": str(row.unpriced)},
            },
        )


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
                    prompt_tokens=int(i.get("prompt_tokens", {}).get("N", "0")),
                    completion_tokens=int(i.get("completion_tokens", {}).get("N", "0")),
                    cached_tokens=int(i.get("cached_tokens", {}).get("N", "0")),
                    cost_usd=float(i.get("cost_usd", {}).get("N", "0")),
                    unpriced=int(i.get("unpriced", {}).get("N", "0")),
                )
                for i in items
            ]
