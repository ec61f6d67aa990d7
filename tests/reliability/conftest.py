"""Helpers for making AWS refuse work, running the store-retry drain on what was queued, and a
module-wide AWS emulation for suites with many small cases.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from fastapi.testclient import TestClient

from tests.conftest import AUTH, emulated_aws


@pytest.fixture(scope="module")
def module_aws() -> Iterator[dict[str, str]]:
    """The `aws` fixture's emulation, set up once per module (creating it costs ~1 s a time).

    Use with `clean_aws`, which empties the table and forgets the built service before each test.
    """
    with pytest.MonkeyPatch.context() as mp, emulated_aws(mp) as env:
        yield env


@pytest.fixture
def clean_aws(module_aws: dict[str, str]) -> Iterator[dict[str, str]]:
    """The module's emulation with an empty table and queues, and a service built afresh."""
    from handler import wiring

    ddb = boto3.client("dynamodb")
    for item in ddb.scan(TableName=module_aws["TABLE_NAME"], ProjectionExpression="pk, sk").get("Items", []):
        ddb.delete_item(TableName=module_aws["TABLE_NAME"], Key=item)
    for url in (module_aws["STORE_RETRY_QUEUE_URL"], module_aws["BATCH_QUEUE_URL"]):
        queued_messages(url)  # received and deleted (PurgeQueue may run once a minute only)
    wiring.reset()
    yield module_aws
    wiring.reset()


@pytest.fixture
def module_client(clean_aws: dict[str, str]) -> Iterator[TestClient]:
    """`client`, on the module-wide emulation."""
    from handler.wiring import create_app

    with TestClient(create_app(), raise_server_exceptions=False, headers=AUTH) as c:
        yield c


def throttled(operation: str) -> ClientError:
    return ClientError(
        {
            "Error": {
                "Code": "ProvisionedThroughputExceededException",
                "Message": "Rate of requests exceeds",
            },
            "ResponseMetadata": {"HTTPStatusCode": 400},
        },
        operation,
    )


class Refusing:
    """A botocore client whose chosen operations fail while `refuse` is true; all else passes through."""

    def __init__(self, real: Any, *operations: str) -> None:
        self._real = real
        self._operations = set(operations)
        self.refuse = True
        self.refused = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._real, name)
        if name not in self._operations:
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.refuse:
                self.refused += 1
                raise throttled(name)
            return attr(*args, **kwargs)

        return call


def refuse_table_writes() -> Refusing:
    """Make the app's completion store see DynamoDB throttle every write."""
    from handler import aws, wiring

    client = Refusing(aws.client("dynamodb"), "batch_write_item", "put_item", "update_item")
    wiring.default_store()._client = client
    return client


def queued_messages(queue_url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    messages: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        if not got.get("Messages"):
            return messages
        messages.extend(got["Messages"])
        for m in got["Messages"]:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])


def sqs_event(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1736935200000"},
                "messageAttributes": {},
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:chat-gateway-store-retry",
                "awsRegion": "us-east-1",
            }
            for m in messages
        ]
    }


def drain(queue_url: str) -> dict[str, Any]:
    """Run StoreRetryFunction on everything queued, as Lambda's SQS poller would."""
    from gatewayctl.local.context import LambdaContext
    from handler.entrypoints.store_retry import lambda_handler

    result: dict[str, Any] = lambda_handler(sqs_event(queued_messages(queue_url)), LambdaContext())
    return result
