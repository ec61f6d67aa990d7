"""No API key, upstream key or SSM secret in any log line, error body or stored record; message
content in logs only when LOG_CONTENT is on.

One run through everything that could leak: a table API key, an OpenAI-compatible model whose key is
an SSM SecureString, answers, streams, upstream errors that echo the key back, garbage, stalls,
refused keys, a throttled table (records queued for a retry) and the Lambda entrypoint.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import EVENTS_DIR, put_project
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.reliability.conftest import refuse_table_writes
from tests.security.logs import captured_logs

CHAT = "/api/v1/chat/completions"
UPSTREAM_KEY = "sk-upstream-LEAKCHECK-7f3a9c2e5b1d4f6a"
KEY_PARAM = "/chat-gateway/secrets/leakcheck"
PROMPT = "my private question about the quarterly numbers"


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def keyed(
    clean_aws: dict[str, str], monkeypatch: pytest.MonkeyPatch, fake: FakeOpenAI
) -> Iterator[tuple[str, str]]:
    """A deployment's auth, a project `sec` on the fake upstream; yields (API key, other project's key)."""
    from handler import wiring
    from handler.store.keys import DynamoKeyStore

    monkeypatch.setenv("AUTH_MODE", "keys")
    wiring.reset()
    boto3.client("ssm").put_parameter(Name=KEY_PARAM, Value=UPSTREAM_KEY, Type="SecureString", Overwrite=True)
    put_project(
        {
            "project": "sec",
            "default_model": "up",
            "models": {
                "up": {
                    "provider": "openai",
                    "base_url": fake.base_url,
                    "model": "up-model",
                    "api_key_param": KEY_PARAM,
                    "max_retries": 1,
                }
            },
        }
    )
    store = DynamoKeyStore("chat-gateway")
    _, key = store.create(["sec"], name="leak-check")
    _, other = store.create(["demo"], name="other")
    yield key, other
    wiring.reset()


def stored_everything(env: dict[str, str]) -> str:
    """Every item in the table, every object in the bucket, every message queued."""
    parts = [json.dumps(boto3.client("dynamodb").scan(TableName=env["TABLE_NAME"])["Items"])]
    s3 = boto3.client("s3")
    for obj in s3.list_objects_v2(Bucket=env["BUCKET_NAME"]).get("Contents", []):
        parts.append(s3.get_object(Bucket=env["BUCKET_NAME"], Key=obj["Key"])["Body"].read().decode())
    sqs = boto3.client("sqs")
    for url in (env["STORE_RETRY_QUEUE_URL"], env["BATCH_QUEUE_URL"]):
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        parts.extend(m["Body"] for m in got.get("Messages", []))
    return "\n".join(parts)


def exercise(client: TestClient, fake: FakeOpenAI, key: str, other: str) -> list[httpx.Response]:
    """Requests that succeed and fail in every way we know; returns the responses."""
    auth = {"Authorization": f"Bearer {key}"}
    echo = f"upstream says: your key {UPSTREAM_KEY} at {fake.base_url} is wrong"
    body = {"model": "sec", "messages": [{"role": "user", "content": PROMPT}]}
    responses = [client.post(CHAT, json=body, headers=auth)]  # answered
    assert responses[0].status_code == 200, responses[0].text
    assert fake.requests[-1].headers["authorization"] == f"Bearer {UPSTREAM_KEY}"  # the key was used
    with client.stream("POST", CHAT, json={**body, "stream": True}, headers=auth) as r:
        r.read()
        responses.append(r)
    scripted = [
        Reply(status=401, error=echo),
        Reply(status=500, error=echo),
        Reply(status=500, error=echo),
        Reply(status=200, body=echo.encode(), content_type="text/html"),
        Reply(text="partial answer", stream_error=echo),
        Reply(text="one two three", drop_after=1),
    ]
    for reply in scripted:
        fake.default = reply
        responses.append(client.post(CHAT, json=body, headers=auth))
    fake.default = Reply(stall=True)
    responses.append(client.post(CHAT, json={**body, "max_ttft_ms": 300}, headers=auth))
    fake.default = Reply()
    # Refused callers: their keys must not be echoed or logged either.
    responses.append(client.post(CHAT, json=body, headers={"Authorization": f"Bearer {other}"}))  # 404
    responses.append(client.post(CHAT, json=body, headers={"Authorization": f"Bearer {key}x"}))  # 401
    responses.append(client.post(CHAT, json=body, headers={"Authorization": key}))  # malformed
    cid = responses[0].json()["choices"][0]["completion_id"]
    responses.append(client.get(f"/api/v1/completions/{cid}", headers={"Authorization": f"Bearer {other}"}))
    # The table refuses: records go to the retry queue.
    refusing = refuse_table_writes()
    responses.append(client.post(CHAT, json=body, headers=auth))
    refusing.refuse = False
    return responses


def lambda_event(key: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS_DIR / "chat_completion.json").read_text())
    event = copy.deepcopy(event)
    event["headers"]["Authorization"] = f"Bearer {key}"
    if event.get("multiValueHeaders"):
        event["multiValueHeaders"]["Authorization"] = [f"Bearer {key}"]
    event["body"] = json.dumps({"model": "sec", "messages": [{"role": "user", "content": PROMPT}]})
    return event


def test_no_secret_in_logs_error_bodies_or_stored_records(
    keyed: tuple[str, str], fake: FakeOpenAI, clean_aws: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    aws = clean_aws
    from gatewayctl.local.context import LambdaContext
    from handler.entrypoints.http import lambda_handler
    from handler.wiring import create_app

    key, other = keyed
    with captured_logs() as logs, TestClient(create_app(), raise_server_exceptions=False) as client:
        responses = exercise(client, fake, key, other)
        # Mangum runs on `asyncio.get_event_loop()`, which an earlier `asyncio.run` in this process
        # leaves unset; Lambda's runtime has one. (tests/entrypoints covers that path itself.)
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            via_lambda = lambda_handler(lambda_event(key), LambdaContext())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
    printed = capsys.readouterr()

    statuses = [r.status_code for r in responses]
    assert statuses == [200, 200, 502, 502, 502, 502, 502, 502, 504, 404, 401, 401, 404, 200], statuses
    assert via_lambda["statusCode"] == 200, via_lambda
    # The capture works: one log line per completion, and the failures are in it.
    completions = [line for line in logs.lines() if line["message"] == "completion"]
    assert len(completions) >= 10
    assert {"completed", "failed", "ttft_exceeded"} <= {line["status"] for line in completions}

    secrets = {"gateway API key": key, "other API key": other, "upstream key": UPSTREAM_KEY}
    places = {
        "logs": logs.text,
        "stdout/stderr": printed.out + printed.err,
        "error bodies": "\n".join(r.text for r in responses[2:]),
        "lambda response": json.dumps(via_lambda),
        "stored records": stored_everything(aws),
    }
    for where, text in places.items():
        for what, secret in secrets.items():
            assert secret not in text, f"{what} found in {where}"
            assert secret[6:] not in text, f"part of the {what} found in {where}"
    for leak in (fake.base_url, "127.0.0.1", "Traceback"):
        assert leak not in places["error bodies"], leak
    # Message content stays out of logs by default.
    assert PROMPT not in logs.text and "quarterly" not in printed.out


def test_log_content_puts_messages_and_answers_in_the_completion_line(
    module_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = module_client
    from handler import wiring

    body = {"model": "demo", "messages": [{"role": "user", "content": PROMPT}]}
    with captured_logs() as logs:
        assert client.post(CHAT, json=body).status_code == 200
    (line,) = [x for x in logs.lines() if x["message"] == "completion"]
    assert PROMPT not in logs.text
    assert "messages" not in line and "content" not in line
    assert line["status"] == "completed" and line["project"] == "demo"

    monkeypatch.setenv("LOG_CONTENT", "true")
    wiring.reset()
    with captured_logs() as logs:
        assert client.post(CHAT, json=body).status_code == 200
    (line,) = [x for x in logs.lines() if x["message"] == "completion"]
    assert line["messages"] == [{"role": "user", "content": PROMPT}]
    assert line["content"] == [PROMPT]
    assert line["system_prompt"] == "You are a helpful assistant."
