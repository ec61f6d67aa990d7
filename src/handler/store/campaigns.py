"""Campaign state and preference counters, beside the variant counters (store/feedback.py).

```
state       pk=CAMPAIGN#{campaign_id}  sk=STATE                   status, winner, reason, ended
pair        pk=CAMPAIGN#{campaign_id}  sk=PAIR#{a}#{b}            pf_w#{metric}, pf_l#{metric}, pf_t#{metric}
comparison  pk=COMPARISON#{id}         sk=COMPARISON              body = JSON
```
A pair's counters are a's wins, losses and ties against b, with a < b (variant names hold no `#`).
The state item is written once (put only if absent): the first decision stands, and the campaign
assignment reads it with the project config (completions/campaign_state.py), never per request.
"""

from __future__ import annotations

from typing import Any

import orjson

from handler.store.dynamo import DynamoClient, Item, query_items
from handler.store.feedback import variant_stats
from handler.store.once import transact_once
from handler.store.values import CampaignCounters, CampaignState, Comparison, PairStats


def campaign_key(campaign_id: str, sk: str) -> Item:
    return {"pk": {"S": f"CAMPAIGN#{campaign_id}"}, "sk": {"S": sk}}


def pair_of(a: str, b: str) -> tuple[str, str, bool]:
    """The pair's stored order (a < b), and whether `a` came second."""
    return (a, b, False) if a < b else (b, a, True)


def put_comparison(client: DynamoClient, table: str, comparison: Comparison, ttl_days: int = 0) -> bool:
    """Store a comparison and, when it is between two variants of one campaign, count it."""
    item: Item = {
        "pk": {"S": f"COMPARISON#{comparison.comparison_id}"},
        "sk": {"S": "COMPARISON"},
        "type": {"S": "comparison"},
        "project": {"S": comparison.project},
        "body": {"S": orjson.dumps(comparison.model_dump(mode="json")).decode()},
    }
    if ttl_days:
        item["expires_at"] = {"N": str(int(comparison.created + ttl_days * 86400))}
    writes: list[dict[str, Any]] = []
    preferred, other = comparison.preferred_variant, comparison.other_variant
    if comparison.campaign and preferred and other and preferred != other:
        a, b, swapped = pair_of(preferred, other)
        # A tie, else a win for `a` when it is the preferred one (not swapped), else a loss.
        counter = "pf_t" if comparison.tied is not None else "pf_l" if swapped else "pf_w"
        writes.append(
            {
                "Update": {
                    "TableName": table,
                    "Key": campaign_key(comparison.campaign, f"PAIR#{a}#{b}"),
                    "UpdateExpression": "SET #project = :project ADD #c :one",
                    "ExpressionAttributeNames": {
                        "#project": "project",
                        "#c": f"{counter}#{comparison.metric}",
                    },
                    "ExpressionAttributeValues": {":project": {"S": comparison.project}, ":one": {"N": "1"}},
                }
            }
        )
    return transact_once(client, table, item, writes)


def _pairs(item: Item) -> list[PairStats]:
    a, b = item["sk"]["S"].removeprefix("PAIR#").split("#", 1)
    metrics: dict[str, dict[str, int]] = {}
    for name, value in item.items():
        for prefix, field in (("pf_w#", "wins"), ("pf_l#", "losses"), ("pf_t#", "ties")):
            if name.startswith(prefix):
                metrics.setdefault(name[len(prefix) :], {})[field] = int(float(value["N"]))
    return [PairStats(a=a, b=b, metric=m, **counts) for m, counts in sorted(metrics.items())]


def _state(item: Item) -> CampaignState:
    return CampaignState(
        campaign_id=item["pk"]["S"].removeprefix("CAMPAIGN#"),
        status=item.get("status", {}).get("S", "completed"),
        winner=item.get("winner", {}).get("S"),
        reason=item.get("reason", {}).get("S", ""),
        ended=float(item.get("ended", {}).get("N", "0")),
    )


def campaign_counters(client: DynamoClient, table: str, campaign_id: str) -> CampaignCounters:
    """The whole campaign partition in one query: variants, pairs and state."""
    out = CampaignCounters()
    for item in query_items(
        client,
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"CAMPAIGN#{campaign_id}"}},
        ConsistentRead=True,
    ):
        sk = item["sk"]["S"]
        if sk.startswith("VARIANT#"):
            out.variants.append(variant_stats(item))
        elif sk.startswith("PAIR#"):
            out.pairs.extend(_pairs(item))
        elif sk == "STATE":
            out.state = _state(item)
    return out


def campaign_state(client: DynamoClient, table: str, campaign_id: str) -> CampaignState | None:
    """The campaign's state item (one strongly consistent GetItem), None while it runs."""
    response = client.get_item(TableName=table, Key=campaign_key(campaign_id, "STATE"), ConsistentRead=True)
    item = response.get("Item")
    return _state(item) if item else None


def end_campaign(client: DynamoClient, table: str, state: CampaignState) -> CampaignState:
    """Record the campaign's end unless it has one already; the state that stands either way."""
    item: Item = {
        **campaign_key(state.campaign_id, "STATE"),
        "type": {"S": "campaign_state"},
        "status": {"S": state.status},
        "reason": {"S": state.reason},
        "ended": {"N": repr(state.ended)},
    }
    if state.winner is not None:
        item["winner"] = {"S": state.winner}
    if transact_once(client, table, item, []):
        return state
    return campaign_state(client, table, state.campaign_id) or state
