"""Quota counters in the single table: one item per (key or project, fixed window).

```
quota counter  pk=QUOTA#{key|project}#{id}  sk={minute|day|month}#{window id}
               requests, tokens, usd (numbers), expires_at (TTL: a day after the window ends)
```
Admitting a request is one round trip: an `UpdateItem` (one counter item) or one
`TransactWriteItems` (several: the key's and the project's, minute, day and month), each item's
`ConditionExpression` requiring every limited counter to be below its limit, and `ADD requests 1`
on the items that count requests. DynamoDB applies all or none, so concurrent requests can never be
admitted past a limit. A refusal returns the old item (`ReturnValuesOnConditionCheckFailure`), which
names the counter that was at its limit. Charging tokens and spend after the answer is one more
round trip (`ADD` on each item), off the path to the first token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from handler.aws import LazyClient
from handler.store.counting import Counter, Refusal, WindowCharge, WindowCheck
from handler.store.dynamo import CONDITION_FAILED, DynamoClient, Item, decimal_number
from handler.store.errors import store_errors

_KEEP_S = 86_400  # counters outlive their window by a day (for whoever looks), then expire


def counter_key(kind: str, scope_id: str, window: str, window_id: str) -> Item:
    return {"pk": {"S": f"QUOTA#{kind}#{scope_id}"}, "sk": {"S": f"{window}#{window_id}"}}


def _condition(limits: dict[Counter, float]) -> tuple[str, dict[str, Any]]:
    terms, values = [], {}
    for counter, limit in limits.items():
        terms.append(f"(attribute_not_exists({counter}) OR {counter} < :max_{counter})")
        values[f":max_{counter}"] = decimal_number(limit)
    return " AND ".join(terms), values


class DynamoQuotaStore:
    """`store.counting.QuotaStore` over the table."""

    def __init__(self, table_name: str, client: DynamoClient | None = None) -> None:
        self._table = table_name
        self._client = client

    client = LazyClient("dynamodb")

    def _action(self, check: WindowCheck) -> tuple[str, dict[str, Any]]:
        condition, values = _condition(check.limits)
        params: dict[str, Any] = {
            "TableName": self._table,
            "Key": counter_key(check.scope.kind, check.scope.id, check.window, check.window_id),
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if not check.count_request:
            return "ConditionCheck", params
        params["UpdateExpression"] = "SET expires_at = if_not_exists(expires_at, :expires) ADD requests :one"
        values[":one"] = {"N": "1"}
        values[":expires"] = {"N": str(int(check.resets_at) + _KEEP_S)}
        return "Update", params

    def admit(self, checks: Sequence[WindowCheck]) -> Refusal | None:
        actions = [self._action(check) for check in checks]
        with store_errors("checking quotas"):
            try:
                if len(actions) == 1 and actions[0][0] == "Update":
                    self.client.update_item(**actions[0][1])
                else:
                    self.client.transact_write_items(TransactItems=[{kind: p} for kind, p in actions])
            except Exception as exc:
                refusal = _refusal(exc, checks)
                if refusal is None:
                    raise
                return refusal
        return None

    def charge(self, charges: Sequence[WindowCharge]) -> None:
        updates = [
            {
                "TableName": self._table,
                "Key": counter_key(c.scope.kind, c.scope.id, c.window, c.window_id),
                "UpdateExpression": "SET expires_at = if_not_exists(expires_at, :expires) ADD tokens :tokens, usd :usd",
                "ExpressionAttributeValues": {
                    ":tokens": {"N": str(c.tokens)},
                    ":usd": decimal_number(c.usd),
                    ":expires": {"N": str(int(c.resets_at) + _KEEP_S)},
                },
            }
            for c in charges
        ]
        with store_errors("charging quotas"):
            if len(updates) == 1:
                self.client.update_item(**updates[0])
            else:  # one round trip for all (at most 6 items: the key's and the project's windows)
                self.client.transact_write_items(TransactItems=[{"Update": u} for u in updates])


def _refusal(exc: BaseException, checks: Sequence[WindowCheck]) -> Refusal | None:
    """Which check failed, and on which counter; None when `exc` is not a failed condition."""
    response = getattr(exc, "response", None) or {}
    code = response.get("Error", {}).get("Code")
    if code == CONDITION_FAILED:
        return _at_limit(checks[0], response.get("Item"))
    if code != "TransactionCanceledException":
        return None
    reasons = response.get("CancellationReasons") or []
    for check, reason in zip(checks, reasons, strict=False):
        if reason.get("Code") == "ConditionalCheckFailed":
            return _at_limit(check, reason.get("Item"))
    return None  # cancelled for another reason (a conflict, throttling): an error, not a refusal


def _at_limit(check: WindowCheck, item: Item | None) -> Refusal:
    for counter, limit in check.limits.items():
        value = (item or {}).get(counter, {}).get("N")
        if value is not None and float(value) >= limit:
            return Refusal(check, counter)
    return Refusal(check, next(iter(check.limits)))
