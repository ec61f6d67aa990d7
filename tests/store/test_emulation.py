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
