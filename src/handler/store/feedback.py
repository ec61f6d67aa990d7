"""Feedback on completions, session outcomes, and the per-variant counters A/B results are read from.

```
feedback  pk=COMPLETION#{completion_id}  sk=FEEDBACK#{feedback_id}   body = JSON
outcome   pk=SESSION#{session_id}        sk=OUTCOME#{outcome_id}     body = JSON
stats     pk=CAMPAIGN#{campaign_id}      sk=VARIANT#{variant}        project, requests, completions,
          failures, fb_n#{metric}, fb_sum#{metric}, oc_n#{metric}, oc_sum#{metric}   (numbers)
```
Results never scan: every stored request, feedback and outcome in a campaign adds to its variant's
counters with one atomic `ADD` (a feedback or outcome item and its counters in one transaction, so
they cannot disagree), and the results endpoint reads one campaign partition.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from pydantic import BaseModel

from handler.store.records import CompletionRecord


class Feedback(BaseModel):
    feedback_id: str
    completion_id: str
    project: str
    metric: str
    value: float
    reason: str | None = None
    details: Any = None
    user_id: str | None = None
    created: float
    campaign: str | None = None
    variant: str | None = None


class SessionOutcome(BaseModel):
    outcome_id: str
    session_id: str
    project: str
    metric: str
    value: float
    user_id: str | None = None
    created: float
    #: The (campaign id, variant) pairs the session's stored completions were served under.
    campaigns: list[tuple[str, str]] = []


class MetricStats(BaseModel):
    count: int
    sum: float

    @property
    def mean(self) -> float | None:
        return self.sum / self.count if self.count else None


class VariantStats(BaseModel):
    variant: str
    project: str | None = None
    requests: int = 0
    completions: int = 0
    failures: int = 0
    feedback: dict[str, MetricStats] = {}
    outcomes: dict[str, MetricStats] = {}


def stats_key(campaign_id: str, variant: str) -> dict[str, Any]:
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
            "UpdateExpression": "SET #project = :project ADD #n :one, #sum :value",
            "ExpressionAttributeNames": {
                "#project": "project",
                "#n": f"{prefix}_n#{metric}",
                "#sum": f"{prefix}_sum#{metric}",
            },
            "ExpressionAttributeValues": {
                ":project": {"S": project},
                ":one": {"N": "1"},
                ":value": _number(value),
            },
        }
    }


def _ttl(item: dict[str, Any], created: float, ttl_days: int) -> dict[str, Any]:
    if ttl_days:
        item["expires_at"] = {"N": str(int(created + ttl_days * 86400))}
    return item


def count_requests(client: Any, table: str, records: Sequence[CompletionRecord]) -> None:
    """Add stored completions to their campaign variants' counters (one update per request)."""
    groups: dict[tuple[str, str, str], list[CompletionRecord]] = defaultdict(list)
    for record in records:
        if record.campaign and record.variant:
            groups[(record.campaign, record.variant, record.request_id)].append(record)
    for (campaign_id, variant, _), group in groups.items():
        client.update_item(
            TableName=table,
            Key=stats_key(campaign_id, variant),
            UpdateExpression="SET #project = :project ADD requests :one, completions :n, failures :failed",
            ExpressionAttributeNames={"#project": "project"},
            ExpressionAttributeValues={
                ":project": {"S": group[0].project},
                ":one": {"N": "1"},
                ":n": {"N": str(len(group))},
                ":failed": {"N": str(sum(r.status != "completed" for r in group))},
            },
        )


def put_feedback(client: Any, table: str, feedback: Feedback, ttl_days: int = 0) -> None:
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
    writes: list[dict[str, Any]] = [{"Put": {"TableName": table, "Item": item}}]
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
    client.transact_write_items(TransactItems=writes)


def put_outcome(client: Any, table: str, outcome: SessionOutcome, ttl_days: int = 0) -> None:
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
    writes: list[dict[str, Any]] = [{"Put": {"TableName": table, "Item": item}}]
    for campaign_id, variant in outcome.campaigns[:99]:  # a transaction holds 100 writes
        writes.append(
            _metric_update(table, campaign_id, variant, outcome.project, "oc", outcome.metric, outcome.value)
        )
    client.transact_write_items(TransactItems=writes)


def list_feedback(client: Any, table: str, completion_id: str) -> list[Feedback]:
    response = client.query(
        TableName=table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :sk)",
        ExpressionAttributeValues={":pk": {"S": f"COMPLETION#{completion_id}"}, ":sk": {"S": "FEEDBACK#"}},
    )
    items = sorted(
        (Feedback.model_validate(orjson.loads(i["body"]["S"])) for i in response.get("Items", [])),
        key=lambda f: f.created,
    )
    return items


def _metrics(item: dict[str, Any], prefix: str) -> dict[str, MetricStats]:
    counts = {
        k[len(prefix) + 3 :]: int(float(v["N"])) for k, v in item.items() if k.startswith(f"{prefix}_n#")
    }
    sums = {k[len(prefix) + 5 :]: float(v["N"]) for k, v in item.items() if k.startswith(f"{prefix}_sum#")}
    return {metric: MetricStats(count=n, sum=sums.get(metric, 0.0)) for metric, n in sorted(counts.items())}


def campaign_stats(client: Any, table: str, campaign_id: str) -> list[VariantStats]:
    """Every variant's counters of a campaign (variants with nothing recorded are absent)."""
    out: list[VariantStats] = []
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :sk)",
        "ExpressionAttributeValues": {":pk": {"S": f"CAMPAIGN#{campaign_id}"}, ":sk": {"S": "VARIANT#"}},
        "ConsistentRead": True,
    }
    while True:
        response = client.query(**kwargs)
        for item in response.get("Items", []):
            out.append(
                VariantStats(
                    variant=item["sk"]["S"].removeprefix("VARIANT#"),
                    project=item.get("project", {}).get("S"),
                    requests=int(float(item.get("requests", {}).get("N", "0"))),
                    completions=int(float(item.get("completions", {}).get("N", "0"))),
                    failures=int(float(item.get("failures", {}).get("N", "0"))),
                    feedback=_metrics(item, "fb"),
                    outcomes=_metrics(item, "oc"),
                )
            )
        if "LastEvaluatedKey" not in response:
            return out
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def session_campaigns(records: Iterable[CompletionRecord]) -> list[tuple[str, str]]:
    """The distinct (campaign, variant) pairs of a session's records, in order of first use."""
    seen = dict.fromkeys((r.campaign, r.variant) for r in records if r.campaign and r.variant)
    return [(c, v) for c, v in seen if c and v]
