"""Nothing accepted is lost: a refused write still answers the client, and the record arrives later."""

from __future__ import annotations

import json
from typing import Any

import boto3
from fastapi.testclient import TestClient

from tests.conftest import table_items
from tests.reliability.conftest import drain, queued_messages, refuse_table_writes, sqs_event
from tests.security.logs import captured_logs

CHAT = "/api/v1/chat/completions"


def completions_in_table() -> list[dict[str, Any]]:
    return [i for i in table_items() if i["sk"]["S"] == "COMPLETION"]


def test_a_throttled_write_still_answers_and_the_record_arrives_after_the_drain(
    module_client: TestClient, clean_aws: dict[str, str]
) -> None:
    client = module_client
    aws = clean_aws
    refusing = refuse_table_writes()
    r = client.post(
        CHAT,
        json={
            "model": "demo",
            "n": 2,
            "labels": {"team": "a"},
            "messages": [{"role": "user", "content": "keep me"}],
        },
    )
    assert r.status_code == 200, r.text
    answer = r.json()
    assert [c["message"]["content"] for c in answer["choices"]] == ["keep me", "keep me"]
    assert refusing.refused >= 1
    assert completions_in_table() == []

    refusing.refuse = False  # DynamoDB is back
    result = drain(aws["STORE_RETRY_QUEUE_URL"])
    assert result == {"batchItemFailures": []}
    for choice in answer["choices"]:
        record = client.get(f"/api/v1/completions/{choice['completion_id']}").json()
        assert record["content"] == "keep me"
        assert record["request_id"] == answer["id"]
        assert record["labels"] == {"team": "a"}
        assert record["messages"] == [{"role": "user", "content": "keep me"}]
    session = client.get(f"/api/v1/sessions/{answer['session_id']}").json()
    assert len(session["completions"]) == 2
    assert queued_messages(aws["STORE_RETRY_QUEUE_URL"]) == []


def test_a_failed_streamed_answer_is_kept_too(module_client: TestClient, clean_aws: dict[str, str]) -> None:
    client = module_client
    aws = clean_aws
    refusing = refuse_table_writes()
    with client.stream(
        "POST",
        CHAT,
        json={"model": "demo", "stream": True, "messages": [{"role": "user", "content": "streamed"}]},
    ) as r:
        assert r.status_code == 200
        text = "".join(r.iter_text())
    assert "streamed" in text and "[DONE]" in text
    assert completions_in_table() == []
    refusing.refuse = False
    assert drain(aws["STORE_RETRY_QUEUE_URL"]) == {"batchItemFailures": []}
    records = [json.loads(i["body"]["S"]) for i in completions_in_table()]
    assert [r["content"] for r in records] == ["streamed"]


def test_a_message_that_fails_again_is_reported_for_redelivery_alone(
    module_client: TestClient, clean_aws: dict[str, str]
) -> None:
    client = module_client
    aws = clean_aws
    refusing = refuse_table_writes()
    for text in ("first", "second"):
        assert (
            client.post(
                CHAT, json={"model": "demo", "messages": [{"role": "user", "content": text}]}
            ).status_code
            == 200
        )
    messages = queued_messages(aws["STORE_RETRY_QUEUE_URL"])
    assert len(messages) == 2
    messages.append({**messages[0], "MessageId": "garbage", "Body": "not json"})

    from gatewayctl.local.context import LambdaContext
    from handler.entrypoints.store_retry import lambda_handler

    # Still throttled: every message fails and is handed back to SQS, none is dropped.
    result = lambda_handler(sqs_event(messages), LambdaContext())
    assert sorted(f["itemIdentifier"] for f in result["batchItemFailures"]) == sorted(
        m["MessageId"] for m in messages
    )
    refusing.refuse = False
    result = lambda_handler(sqs_event(messages), LambdaContext())
    assert result["batchItemFailures"] == [{"itemIdentifier": "garbage"}]  # only the bad one stays
    assert sorted(json.loads(i["body"]["S"])["content"] for i in completions_in_table()) == [
        "first",
        "second",
    ]


def test_when_the_queue_fails_too_the_client_still_gets_its_answer_and_the_loss_is_logged(
    module_client: TestClient, clean_aws: dict[str, str]
) -> None:
    client = module_client
    from handler import wiring
    from tests.reliability.conftest import Refusing

    refuse_table_writes()
    queue = wiring.default_retry_queue()
    assert queue is not None
    queue._client = Refusing(boto3.client("sqs"), "send_message")
    with captured_logs() as logs:
        r = client.post(CHAT, json={"model": "demo", "messages": [{"role": "user", "content": "doomed"}]})
    assert r.status_code == 200, r.text
    cid = r.json()["choices"][0]["completion_id"]
    lines = logs.lines()
    lost = [line for line in lines if line.get("message", "").startswith("completion records lost")]
    assert lost and lost[0]["level"] == "CRITICAL" and lost[0]["completion_ids"] == [cid]
    assert "doomed" not in json.dumps(lines)  # content stays out of logs


def test_store_errors_outside_dynamodb_are_caught_too(
    module_client: TestClient, clean_aws: dict[str, str]
) -> None:
    client = module_client
    aws = clean_aws
    from handler import wiring

    store = wiring.default_store()

    def broken(records: Any) -> None:
        raise RuntimeError("a bug in the store")

    store.put_completions = broken  # type: ignore[method-assign]
    r = client.post(CHAT, json={"model": "demo", "messages": [{"role": "user", "content": "bug"}]})
    assert r.status_code == 200
    (message,) = queued_messages(aws["STORE_RETRY_QUEUE_URL"])
    assert json.loads(message["Body"])["records"][0]["content"] == "bug"


def test_the_store_retry_event_file_drives_the_function(clean_aws: dict[str, str]) -> None:
    """`make invoke EVENT=events/store_retry.json` runs StoreRetryFunction on a queued record."""
    from gatewayctl.local.invoke import handler_for, invoke
    from tests.conftest import EVENTS_DIR

    event = json.loads((EVENTS_DIR / "store_retry.json").read_text())
    assert handler_for(event) == "handler.entrypoints.store_retry.lambda_handler"
    assert invoke(event) == {"batchItemFailures": []}
    (item,) = completions_in_table()
    assert json.loads(item["body"]["S"])["content"] == "Hello, gateway!"
