"""The emulation the suite runs on: moto's DynamoDB writes made atomic by `atomic_moto_dynamodb`
(tests/conftest.py), which the batch counter and the campaign counters rely on."""

from __future__ import annotations

import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

pytestmark = pytest.mark.unit


def test_concurrent_adds_to_one_item_all_count(store_aws: dict[str, str], ddb: Any) -> None:
    table = store_aws["TABLE_NAME"]
    key = {"pk": {"S": f"TEST#{uuid.uuid4()}"}, "sk": {"S": "COUNTER"}}

    def add(n: int) -> None:
        ddb.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="ADD done :one, seen :n",
            ExpressionAttributeValues={":one": {"N": "1"}, ":n": {"NS": [str(n)]}},
        )

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # threads interleave often: without the lock, increments get lost
    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(add, range(120)))
    finally:
        sys.setswitchinterval(interval)
    item = ddb.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
    assert item["done"] == {"N": "120"}
    assert len(item["seen"]["NS"]) == 120


def test_a_cancelled_transaction_leaves_every_item_as_it_was(store_aws: dict[str, str], ddb: Any) -> None:
    """The emulation backs a transaction up by the items it names (not a copy of the whole table):
    a cancelled one still writes nothing, and a later one still applies."""
    from botocore.exceptions import ClientError

    table = store_aws["TABLE_NAME"]
    pk = {"S": f"TEST#{uuid.uuid4()}"}

    def key(sk: str) -> dict[str, Any]:
        return {"pk": pk, "sk": {"S": sk}}

    ddb.put_item(TableName=table, Item={**key("COUNTER"), "n": {"N": "1"}})
    ddb.put_item(TableName=table, Item={**key("GONE"), "n": {"N": "7"}})
    ddb.put_item(TableName=table, Item=key("MARKER"))
    add = {
        "Update": {
            "TableName": table,
            "Key": key("COUNTER"),
            "UpdateExpression": "ADD n :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
        }
    }
    new = {"Put": {"TableName": table, "Item": key("NEW")}}
    delete = {"Delete": {"TableName": table, "Key": key("GONE")}}
    marker = {
        "Put": {"TableName": table, "Item": key("MARKER"), "ConditionExpression": "attribute_not_exists(pk)"}
    }
    with pytest.raises(ClientError, match="TransactionCanceled"):
        ddb.transact_write_items(TransactItems=[new, add, delete, marker])

    def items() -> list[tuple[str, str | None]]:
        found = ddb.query(
            TableName=table, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": pk}
        )["Items"]
        return sorted((i["sk"]["S"], i.get("n", {}).get("N")) for i in found)

    assert items() == [("COUNTER", "1"), ("GONE", "7"), ("MARKER", None)]
    ddb.transact_write_items(TransactItems=[new, add, delete])
    assert items() == [("COUNTER", "2"), ("MARKER", None), ("NEW", None)]
