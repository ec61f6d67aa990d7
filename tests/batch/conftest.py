"""Batch fixtures: the `aws` emulation plus a pipeline that drives BatchFunction's handler the way S3
notifications and Lambda's SQS poller do (events built from the moto queue's received messages)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from gatewayctl.local.batch import LambdaContext, Pipeline


def chat_line(custom_id: str, content: str, **body: Any) -> str:
    return json.dumps(
        {
            "custom_id": custom_id,
            "method": "POST",
            "url": "/api/v1/chat/completions",
            "body": {"model": "demo", "messages": [{"role": "user", "content": content}], **body},
        }
    )


def good_lines(n: int, prefix: str = "req") -> list[str]:
    return [chat_line(f"{prefix}-{i}", f"Hello number {i}") for i in range(n)]


@pytest.fixture
def pipeline(aws: dict[str, str]) -> Iterator[Pipeline]:
    from handler.entrypoints.batch import lambda_handler

    yield Pipeline(
        lambda_handler, aws["BUCKET_NAME"], aws["BATCH_QUEUE_URL"], boto3.client("sqs"), boto3.client("s3")
    )


def invoke(event: dict[str, Any]) -> dict[str, Any]:
    from handler.entrypoints.batch import lambda_handler

    return lambda_handler(event, LambdaContext())


def receive_all(queue_url: str, attempts: int = 3) -> list[dict[str, Any]]:
    """Every visible message (moto returns at most ten per call)."""
    sqs = boto3.client("sqs")
    out: list[dict[str, Any]] = []
    empty = 0
    while empty < attempts:
        got = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=300,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not got:
            empty += 1
        out.extend(got)
    return out


def records_of(kind: str, table: str = "chat-gateway") -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    client = boto3.client("dynamodb")
    kwargs: dict[str, Any] = {"TableName": table}
    while True:
        page = client.scan(**kwargs)
        items.extend(i for i in page.get("Items", []) if i.get("type", {}).get("S") == kind)
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def read_output(bucket: str, key: str) -> list[dict[str, Any]]:
    body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    assert body.endswith("\n")
    return [json.loads(line) for line in body.splitlines()]
