"""Writes that count once: an item put only if absent, with the counter updates it stands for.

Redelivery (a store-retry message delivered twice, a replayed batch, a client retrying with the
same id) then finds the item there and the whole transaction writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from handler.store.dynamo import CONDITION_FAILED, DynamoClient, Item

_CANCELLED = "TransactionCanceledException"


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


def transact_once(client: DynamoClient, table: str, item: Item, writes: Sequence[dict[str, Any]]) -> bool:
    """Put `item` only if absent, and `writes` with it in one transaction. False (nothing written)
    when the item was there already: what makes a redelivered write count nothing."""
    put = {"Put": {"TableName": table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}
    try:
        if writes:
            client.transact_write_items(TransactItems=[put, *writes])
        else:
            client.put_item(**put["Put"])
    except Exception as exc:
        if _first_write_refused(exc):
            return False
        raise
    return True
