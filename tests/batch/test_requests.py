"""Single chat requests sent to the batch queue: completed, stored, replied to; bad messages fail alone."""

from __future__ import annotations

import json
from typing import Any

import boto3

from gatewayctl.local.batch import sqs_event
from tests.batch.conftest import invoke, receive_all, records_of


def _send(queue_url: str, body: Any) -> str:
    text = body if isinstance(body, str) else json.dumps(body)
    return str(boto3.client("sqs").send_message(QueueUrl=queue_url, MessageBody=text)["MessageId"])


def _request(content: str, **extra: Any) -> dict[str, Any]:
    return {"model": "demo", "messages": [{"role": "user", "content": content}], **extra}


def test_queued_requests_are_answered_stored_and_replied_once(aws: dict[str, str]) -> None:
    sqs = boto3.client("sqs")
    replies = sqs.create_queue(QueueName="chat-gateway-replies-test")["QueueUrl"]
    events = boto3.client("events")
    events.create_event_bus(Name="chat-gateway-results")
    bus_queue = sqs.create_queue(QueueName="bus-target")["QueueUrl"]
    bus_queue_arn = sqs.get_queue_attributes(QueueUrl=bus_queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(
        Name="all", EventBusName="chat-gateway-results", EventPattern='{"source": ["chat-gateway"]}'
    )
    events.put_targets(
        Rule="all", EventBusName="chat-gateway-results", Targets=[{"Id": "q", "Arn": bus_queue_arn}]
    )

    queue = aws["BATCH_QUEUE_URL"]
    ok = _send(queue, _request("first", store=False, custom_id="c-1", reply_to={"queue_url": replies}))
    to_bus = _send(queue, _request("second", custom_id="c-2", reply_to="chat-gateway-results"))
    invalid = _send(queue, _request("third", temperature=9, custom_id="c-3", reply_to=replies))
    not_json = _send(queue, "this is not a request")
    bad_reply = _send(queue, _request("fourth", reply_to={"url": "nowhere"}))
    messages = receive_all(queue)
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    event = sqs_event(messages, queue_arn)

    response = invoke(event)
    assert sorted(f["itemIdentifier"] for f in response["batchItemFailures"]) == sorted([not_json, bad_reply])

    # Stored although the request said `store: false` (queued requests always store).
    completions = records_of("completion")
    assert len(completions) == 2
    got = {json.loads(m["Body"])["custom_id"]: json.loads(m["Body"]) for m in receive_all(replies)}
    assert set(got) == {"c-1", "c-3"}
    answer = got["c-1"]
    assert answer["error"] is None and answer["response"]["status_code"] == 200
    assert answer["response"]["body"]["choices"][0]["message"]["content"] == "first"
    stored_ids = {c["pk"]["S"].removeprefix("COMPLETION#") for c in completions}
    assert answer["response"]["body"]["choices"][0]["completion_id"] in stored_ids
    refused = got["c-3"]  # the same 400 as the API, to the caller's reply queue; the message is done
    assert refused["response"]["status_code"] == 400 and refused["error"]["code"] == "invalid_request"
    (on_bus,) = receive_all(bus_queue)
    detail = json.loads(on_bus["Body"])["detail"]
    assert (
        detail["custom_id"] == "c-2"
        and detail["response"]["body"]["choices"][0]["message"]["content"] == "second"
    )

    # Every message again (a redelivery): no second completion, no second reply.
    for record in event["Records"]:
        record["attributes"]["ApproximateReceiveCount"] = "2"
    again = invoke(event)
    assert sorted(f["itemIdentifier"] for f in again["batchItemFailures"]) == sorted([not_json, bad_reply])
    assert len(records_of("completion")) == 2
    assert receive_all(replies) == [] and receive_all(bus_queue) == []
    assert ok and to_bus and invalid


def test_the_sqs_event_file_drives_the_handler(aws: dict[str, str]) -> None:
    from tests.conftest import EVENTS_DIR

    event = json.loads((EVENTS_DIR / "sqs_message.json").read_text())
    assert invoke(event) == {"batchItemFailures": []}
    (record,) = records_of("completion")
    body = json.loads(record["body"]["S"])
    assert body["labels"] == {"source": "sqs"} and body["project"] == "demo"


def test_the_http_handler_still_works_in_the_same_process_after_a_batch_invocation(
    aws: dict[str, str],
) -> None:
    """`make invoke` runs several events in one process, as a warm Lambda would."""
    import asyncio

    from gatewayctl.local.batch import LambdaContext
    from handler.entrypoints.http import lambda_handler
    from tests.conftest import EVENTS_DIR

    assert invoke(json.loads((EVENTS_DIR / "sqs_message.json").read_text())) == {"batchItemFailures": []}
    asyncio.get_event_loop_policy().get_event_loop()  # the caller's thread still has its loop state
    response = lambda_handler(json.loads((EVENTS_DIR / "chat_completion.json").read_text()), LambdaContext())
    assert response["statusCode"] == 200
