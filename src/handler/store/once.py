"""Writes that count once: an item put only if absent, with the counter updates it stands for.

Redelivery (a store-retry message delivered twice, a replayed batch, a client retrying with the
same id) then finds the item there and the whole transaction writes nothing.

The counters are hot items (every request of a project's day, model and key adds to one usage
row), and DynamoDB cancels a transaction that meets another on the same item
(`TransactionConflict`), which the SDK does not retry: it is sent again here, a few times with
jittered pauses, before the error is raised.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from handler.store.dynamo import CONDITION_FAILED, Backoff, DynamoClient, Item

_CANCELLED = "TransactionCanceledException"
CONFLICT_BACKOFF = Backoff(attempts=4, base_s=0.02, cap_s=0.2)


def _conflicted(exc: BaseException) -> bool:
    """True when a transaction was cancelled because another one was writing one of its items."""
    response = getattr(exc, "response", None) or {}
    error = response.get("Error", {})
    if error.get("Code") != _CANCELLED:
        return False
    reasons = response.get("CancellationReasons")
    if reasons:
        return any(r.get("Code") == "TransactionConflict" for r in reasons)
    return "TransactionConflict" in str(error.get("Message", ""))


def _first_write_refused(exc: BaseException) -> bool:
    """True when a transaction was cancelled because its first write's condition did not hold."""
    response = getattr(exc, "response", None) or {}
    error = response.get("Error", {})
    if error.get("Code") == CONDITION_FAILED:
        return True
    if error.get("Code") != _CANCELLED:
        return False
    reasons = response.get("CancellationReasons")
    if reasons:
        return bool(reasons[0].get("Code") == "ConditionalCheckFailed")
    message = str(error.get("Message", ""))  # older emulators: the reasons only in the message
    return "[ConditionalCheckFailed" in message


def transact_once(
    client: DynamoClient,
    table: str,
    item: Item,
    writes: Sequence[dict[str, Any]],
    *,
    backoff: Backoff = CONFLICT_BACKOFF,
) -> bool:
    """Put `item` only if absent, and `writes` with it in one transaction. False (nothing written)
    when the item was there already: what makes a redelivered write count nothing. A transaction
    cancelled by a conflict with another is sent again (`backoff`); still one round trip when none."""
    put = {"Put": {"TableName": table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}
    for attempt in range(backoff.attempts):
        if attempt:
            backoff.pause(attempt - 1)
        try:
            if writes:
                client.transact_write_items(TransactItems=[put, *writes])
            else:
                client.put_item(**put["Put"])
        except Exception as exc:
            if _first_write_refused(exc):
                return False
            if _conflicted(exc) and attempt + 1 < backoff.attempts:
                continue
            raise
        return True
    raise AssertionError("unreachable: the last attempt returns or raises")
