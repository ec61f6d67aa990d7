"""The usage report counts every answered request exactly once: replaying a request's records (as
the store-retry queue does) changes nothing, and requests with `store: false` are in the report
(their numbers only, shown as unstored) while nothing of them is stored.

As in test_usage.py, the report is checked against the records themselves: what is stored, plus
what the unstored requests add, which here are twins of stored ones (the same request sent again
with `store: false`, so they add the same numbers)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import orjson
import pytest

from handler.store.errors import StoreError
from tests.security.logs import captured_logs
from tests.streaming.conftest import Gateway, chat, project, records
from tests.streaming.test_usage import PRICES, same, send, summed, usage

TABLE = "chat-gateway"


def table_text() -> str:
    return json.dumps(boto3.client("dynamodb").scan(TableName=TABLE).get("Items", []))


def replay(stored: list[dict[str, Any]]) -> None:
    """The stored records of each request, delivered to StoreRetryFunction as the queue would."""
    from gatewayctl.local.context import LambdaContext
    from handler.entrypoints.store_retry import lambda_handler

    by_request: dict[str, list[dict[str, Any]]] = {}
    for r in stored:
        by_request.setdefault(r["request_id"], []).append(r)
    event = {
        "Records": [
            {
                "messageId": f"m-{i}",
                "receiptHandle": f"h-{i}",
                "body": orjson.dumps({"v": 1, "records": group}).decode(),
                "attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1736935200000"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:chat-gateway-store-retry",
                "awsRegion": "us-east-1",
            }
            for i, group in enumerate(by_request.values())
        ]
    }
    assert lambda_handler(event, LambdaContext())["batchItemFailures"] == []


def test_replaying_stored_records_leaves_the_report_unchanged(gateway: Gateway) -> None:
    name = project("replayed", {"e": {"provider": "echo", "prices": PRICES}, "u": {"provider": "echo"}})
    for stream in (True, False):
        send(gateway, chat(f"{name}/e", stream=stream, n=2))
        send(gateway, chat(f"{name}/u", stream=stream))
    gateway.saves.wait(4)
    stored = records()
    before = {by: usage(gateway, name, group_by=by) for by in ("model", "key", "day")}
    replay(stored)
    replay(stored)  # delivered twice
    assert records() == stored
    assert {by: usage(gateway, name, group_by=by) for by in ("model", "key", "day")} == before
    assert before["day"]["total"]["requests"] == 4


@pytest.mark.parametrize("stream", [True, False])
def test_an_unstored_request_is_in_the_report_and_nothing_of_it_is_stored(
    gateway: Gateway, stream: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    name = project(f"unstored-{'sse' if stream else 'json'}", {"e": {"provider": "echo", "prices": PRICES}})
    secret = f"do not keep {uuid.uuid4()}"
    send(gateway, chat(f"{name}/e", text=secret, stream=stream, n=2, store=False))
    gateway.saves.wait(1)
    assert records() == []
    assert secret not in table_text()
    report = usage(gateway, name, group_by="model")
    [group] = report["groups"]
    assert group["key"] == f"{name}/e"
    assert (group["requests"], group["unstored_requests"]) == (1, 1)
    assert group["prompt_tokens"] > 0 and group["completion_tokens"] > 0 and group["cost_usd"] > 0
    assert report["total"] == {k: v for k, v in group.items() if k != "key"}

    # The same request stored adds the same numbers: the unstored one was counted in full.
    send(gateway, chat(f"{name}/e", text=secret, stream=stream, n=2))
    gateway.saves.wait(2)
    twin = summed(records(), "model")[f"{name}/e"]
    [group] = usage(gateway, name, group_by="model")["groups"]
    same(group, {k: 2 * v for k, v in twin.items()} | {"unstored_requests": 1})

    from gatewayctl.cli import main

    capsys.readouterr()
    assert main(["usage", "--project", name]) == 0
    assert "1 of the requests were not stored (store: false)" in capsys.readouterr().out


def test_the_report_is_the_stored_records_plus_the_unstored_requests(gateway: Gateway) -> None:
    name = project(
        "mixed", {"e": {"provider": "echo", "prices": PRICES}, "u": {"provider": "echo"}}, store=False
    )
    from handler.store.keys import DynamoKeyStore

    _, secret = DynamoKeyStore(TABLE).create([name])
    as_key = {"Authorization": f"Bearer {secret}"}
    sent = 0
    for stream in (True, False):
        for model, n, headers in (("e", 1, None), ("u", 1, None), ("e", 3, as_key)):
            body = chat(f"{name}/{model}", text=f"twin {model} {n}", stream=stream, n=n)
            send(gateway, body | {"store": True}, headers)  # the project's default: not stored
            send(gateway, body, headers)
            sent += 2
    gateway.saves.wait(sent)
    stored = records()
    assert len({r["request_id"] for r in stored}) == sent // 2
    for group_by in ("model", "key"):
        report = usage(gateway, name, group_by=group_by)
        expected = summed(stored, group_by)
        assert [g["key"] for g in report["groups"]] == sorted(expected)
        for group in report["groups"]:
            assert group["requests"] - group["unstored_requests"] == expected[group["key"]]["requests"]
            same(group, {k: 2 * v for k, v in expected[group["key"]].items()})
    total = usage(gateway, name, group_by="day")["total"]
    assert (total["requests"], total["unstored_requests"]) == (sent, sent // 2)


@pytest.mark.parametrize("stream", [True, False])
def test_a_failure_counting_an_unstored_request_still_answers_and_is_logged(
    gateway: Gateway, stream: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from handler.store.dynamodb import DynamoCompletionStore

    def refused(self: DynamoCompletionStore, records: Any) -> None:
        raise StoreError("counting usage: ProvisionedThroughputExceededException")

    monkeypatch.setattr(DynamoCompletionStore, "count_usage", refused)
    name = project(f"uncounted-{'sse' if stream else 'json'}", {"e": {"provider": "echo"}})
    with captured_logs() as logs:
        send(gateway, chat(f"{name}/e", text="quietly answered", stream=stream, store=False))
        gateway.saves.wait(1)
    [line] = [line for line in logs.lines() if line.get("message", "").startswith("usage not counted")]
    assert line["level"] == "ERROR" and line["request_id"].startswith("chatcmpl-")
    assert "ProvisionedThroughputExceeded" in line["error"]
    assert "quietly answered" not in json.dumps(logs.lines())  # content stays out of logs
    assert usage(gateway, name)["total"]["requests"] == 0
