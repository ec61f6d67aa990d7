"""Where a completion lives in the single table, shared by the record writer (dynamodb.py) and the
query index (queries.py): its item key, and the sort key that orders a session or an index
partition by creation time, then choice index."""

from __future__ import annotations

from handler.store.dynamo import Item, time_key


def completion_key(completion_id: str) -> Item:
    return {"pk": {"S": f"COMPLETION#{completion_id}"}, "sk": {"S": "COMPLETION"}}


def completion_sort_key(created: float, index: int, completion_id: str) -> str:
    """`{created_us}#{index}#{id}`: GSI1's sort key in a session, GSI2's in a query partition."""
    return time_key(created, f"{index:04d}", completion_id)
