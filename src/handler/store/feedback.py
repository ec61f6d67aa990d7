"""Feedback on completions, session outcomes, and the per-variant counters A/B results are read from.

```
feedback  pk=COMPLETION#{completion_id}  sk=FEEDBACK#{feedback_id}   body = JSON
outcome   pk=SESSION#{session_id}        sk=OUTCOME#{outcome_id}     body = JSON
stats     pk=CAMPAIGN#{campaign_id}      sk=VARIANT#{variant}        project, requests, completions,
          failures, fb_n#{metric}, fb_sum#{metric}, oc_n#{metric}, oc_sum#{metric}   (numbers)
          and fb_sq# / oc_sq# (sums of squares), fb_nb# / oc_nb# (values not 0 or 1)
counted   pk=REQUEST#{request_id}    sk=COUNTED#{campaign_id}     (a request is counted once)
```
Results never scan: every stored request, feedback and outcome in a campaign adds to its variant's
counters with one atomic `ADD` (a feedback or outcome item and its counters in one transaction, so
they cannot disagree), and the results endpoint reads one campaign partition.

Counting is exact under redelivery: a feedback or outcome item is put only if absent (the same id
never counts twice), and a request's counters are added in one transaction with a `counted` marker
put only if absent, so a store-retry message delivered twice or a replayed batch counts once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import orjson

from handler.store.dynamo import DynamoClient, Item, query_items
from handler.store.once import transact_once
from handler.store.records import CompletionRecord
from handler.store.values import Feedback, MetricStats, SessionOutcome, VariantStats


def stats_key(campaign_id: str, variant: str) -> Item:
    return {"pk": {"S": f"CAMPAIGN#{campaign_id}"}, "sk": {"S": f"VARIANT#{variant}"}}


def _number(value: float | int) -> dict[str, str]:
    return {"N": repr(float(value)) if isinstance(value, float) else str(value)}


def _metric_update(
    table: str, campaign_id: str, variant: str, project: str, prefix: str, metric: str, value: float
) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": table,
            "Key": stats_key(campaign_id, variant),
            "UpdateExpression": "SET #project = :project ADD #n :one, #sum :value, #sq :sq, #nb :nb",
            "ExpressionAttributeNames": {
                "#project": "project",
                "#n": f"{prefix}_n#{metric}",
                "#sum": f"{prefix}_sum#{metric}",
                "#sq": f"{prefix}_sq#{metric}",
                "#nb": f"{prefix}_nb#{metric}",
            },
            "ExpressionAttributeValues": {
                ":project": {"S": project},
                ":one": {"N": "1"},
                ":value": _number(value),
                ":sq": _number(float(value) * float(value)),
                ":nb": {"N": "0" if float(value) in (0.0, 1.0) else "1"},
            },
        }
    }


def _ttl(item: Item, created: float, ttl_days: int) -> Item:
    if ttl_days:
        item["expires_at"] = {"N": str(int(created + ttl_days * 86400))}
    return item


def count_requests(
    client: DynamoClient, table: str, records: Sequence[CompletionRecord], expires: int | None = None
) -> None:
    """Add stored completions to their campaign variants' counters, once per request: the update
    and a `counted` marker (put only if absent) in one transaction, so a rewrite counts nothing."""
    groups: dict[tuple[str, str, str], list[CompletionRecord]] = defaultdict(list)
    for record in records:
        if record.campaign and record.variant:
            groups[(record.campaign, record.variant, record.request_id)].append(record)
    for (campaign_id, variant, request_id), group in groups.items():
        marker: Item = {
            "pk": {"S": f"REQUEST#{request_id}"},
            "sk": {"S": f"COUNTED#{campaign_id}"},
            "type": {"S": "counted"},
        }
        if expires is not None:
            marker["expires_at"] = {"N": str(expires)}
        update = {
            "TableName": table,
            "Key": stats_key(campaign_id, variant),
            "UpdateExpression": "SET #project = :project ADD requests :one, completions :n, failures :failed",
            "ExpressionAttributeNames": {"#project": "project"},
            "ExpressionAttributeValues": {
                ":project": {"S": group[0].project},
                ":one": {"N": "1"},
                ":n": {"N": str(len(group))},
                ":failed": {"N": str(sum(r.status != "completed" for r in group))},
            },
        }
        transact_once(client, table, marker, [{"Update": update}])


def put_feedback(client: DynamoClient, table: str, feedback: Feedback, ttl_days: int = 0) -> None:
    item = _ttl(
        {
            "pk": {"S": f"COMPLETION#{feedback.completion_id}"},
            "sk": {"S": f"FEEDBACK#{feedback.feedback_id}"},
            "type": {"S": "feedback"},
            "project": {"S": feedback.project},
            "body": {"S": orjson.dumps(feedback.model_dump(mode="json")).decode()},
        },
        feedback.created,
        ttl_days,
    )
    writes: list[dict[str, Any]] = []
    if feedback.campaign and feedback.variant:
        writes.append(
            _metric_update(
                table,
                feedback.campaign,
                feedback.variant,
                feedback.project,
                "fb",
                feedback.metric,
                feedback.value,
            )
        )
    transact_once(client, table, item, writes)


def put_outcome(client: DynamoClient, table: str, outcome: SessionOutcome, ttl_days: int = 0) -> None:
    item = _ttl(
        {
            "pk": {"S": f"SESSION#{outcome.session_id}"},
            "sk": {"S": f"OUTCOME#{outcome.outcome_id}"},
            "type": {"S": "outcome"},
            "project": {"S": outcome.project},
            "body": {"S": orjson.dumps(outcome.model_dump(mode="json")).decode()},
        },
        outcome.created,
        ttl_days,
    )
    writes: list[dict[str, Any]] = []
    for campaign_id, variant in outcome.campaigns[:99]:  # a transaction holds 100 writes
        writes.append(
            _metric_update(table, campaign_id, variant, outcome.project, "oc", outcome.metric, outcome.value)
        )
    transact_once(client, table, item, writes)


def list_feedback(client: DynamoClient, table: str, completion_id: str) -> list[Feedback]:
    items = query_items(
        client,
        TableName=table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :sk)",
        ExpressionAttributeValues={":pk": {"S": f"COMPLETION#{completion_id}"}, ":sk": {"S": "FEEDBACK#"}},
    )
    return sorted(
        (Feedback.model_validate(orjson.loads(i["body"]["S"])) for i in items), key=lambda f: f.created
    )


def _metrics(item: Item, prefix: str) -> dict[str, MetricStats]:
    counts = {
        k[len(prefix) + 3 :]: int(float(v["N"])) for k, v in item.items() if k.startswith(f"{prefix}_n#")
    }
    sums = {k[len(prefix) + 5 :]: float(v["N"]) for k, v in item.items() if k.startswith(f"{prefix}_sum#")}
    squares = {k[len(prefix) + 4 :]: float(v["N"]) for k, v in item.items() if k.startswith(f"{prefix}_sq#")}
    odd = {k[len(prefix) + 4 :]: int(float(v["N"])) for k, v in item.items() if k.startswith(f"{prefix}_nb#")}
    return {
        metric: MetricStats(
            count=n, sum=sums.get(metric, 0.0), sum_sq=squares.get(metric, 0.0), non_binary=odd.get(metric, 0)
        )
        for metric, n in sorted(counts.items())
    }


def campaign_stats(client: DynamoClient, table: str, campaign_id: str) -> list[VariantStats]:
    """Every variant's counters of a campaign (variants with nothing recorded are absent)."""
    items = query_items(
        client,
        TableName=table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :sk)",
        ExpressionAttributeValues={":pk": {"S": f"CAMPAIGN#{campaign_id}"}, ":sk": {"S": "VARIANT#"}},
        ConsistentRead=True,
    )
    return [variant_stats(item) for item in items]


def variant_stats(item: Item) -> VariantStats:
    """A variant's counters item, read."""
    return VariantStats(
        variant=item["sk"]["S"].removeprefix("VARIANT#"),
        project=item.get("project", {}).get("S"),
        requests=int(float(item.get("requests", {}).get("N", "0"))),
        completions=int(float(item.get("completions", {}).get("N", "0"))),
        failures=int(float(item.get("failures", {}).get("N", "0"))),
        feedback=_metrics(item, "fb"),
        outcomes=_metrics(item, "oc"),
    )
