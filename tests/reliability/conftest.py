"""Helpers for making AWS refuse work, and for running the store-retry drain on what was queued."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.exceptions import ClientError


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
    from handler.entrypoints.store_retry import lambda_handler
    from handler.local.invoke import LambdaContext

    result: dict[str, Any] = lambda_handler(sqs_event(queued_messages(queue_url)), LambdaContext())
    return result
