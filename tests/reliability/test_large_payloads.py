"""Records larger than a DynamoDB item (400 KB) are stored with their large parts in S3, read back whole."""

from __future__ import annotations

import json
from typing import Any

import boto3
import orjson
from fastapi.testclient import TestClient

from tests.conftest import table_items
from tests.reliability.conftest import drain, queued_messages, refuse_table_writes

CHAT = "/api/v1/chat/completions"
# Every kind of character that could be mangled on the way: multi-byte, astral, combining,
# control characters, quotes and backslashes, a lone surrogate's escape, invisible ones.
TRICKY = 'héllo wörld — 日本語 🎉👩‍👩‍👧 e\u0301 \t\n\r "quoted" \\back\\slash \u2028\u2029 \u0000 \ufeff'


def conversation(total_bytes: int = 1_100_000, parts: int = 6) -> list[dict[str, Any]]:
    per = total_bytes // parts
    unit = TRICKY + "".join(chr(0x4E00 + i % 500) for i in range(200))
    repeat = per // len(unit.encode()) + 1
    messages: list[dict[str, Any]] = []
    for i in range(parts):
        text = f"[{i}] " + unit * repeat
        text = text[:180_000]  # under the default max_message_chars (200k characters)
        messages.append({"role": "user" if i % 2 == 0 else "assistant", "content": text})
    return messages


def item_size(item: dict[str, Any]) -> int:
    return sum(len(k.encode()) + len(json.dumps(v).encode()) for k, v in item.items())


def test_a_1mb_conversation_round_trips_byte_for_byte(
    module_client: TestClient, clean_aws: dict[str, str]
) -> None:
    client = module_client
    aws = clean_aws
    messages = conversation()
    sent = orjson.dumps(messages)
    assert len(sent) > 1_000_000
    r = client.post(CHAT, json={"model": "demo", "messages": messages, "labels": {"size": "big"}})
    assert r.status_code == 200, r.text[:300]
    answer = r.json()
    cid = answer["choices"][0]["completion_id"]
    content = answer["choices"][0]["message"]["content"]
    assert messages[-2]["content"].startswith(content)  # echo: the last user message, up to max_tokens

    (item,) = [i for i in table_items() if i["sk"]["S"] == "COMPLETION"]
    assert item_size(item) < 100_000  # the item itself stays far below DynamoDB's 400 KB
    key = item["payload"]["S"]
    assert key == f"payloads/demo/{cid}.json"
    assert boto3.client("s3").head_object(Bucket=aws["BUCKET_NAME"], Key=key)["ContentLength"] > 1_000_000

    record = client.get(f"/api/v1/completions/{cid}").json()
    assert orjson.dumps(record["messages"]) == sent  # byte for byte
    assert record["content"] == content
    assert record["labels"] == {"size": "big"}

    # Every way of reading it back gives the whole record.
    (in_session,) = client.get(f"/api/v1/sessions/{answer['session_id']}").json()["completions"]
    assert orjson.dumps(in_session["messages"]) == sent
    listed = client.get("/api/v1/projects/demo/completions").json()
    found = [c for c in listed["completions"] if c["completion_id"] == cid]
    assert found and orjson.dumps(found[0]["messages"]) == sent


def test_store_round_trip_of_a_large_record_is_exact(clean_aws: dict[str, str]) -> None:
    from handler import wiring
    from handler.store.records import CompletionRecord

    record = CompletionRecord(
        completion_id="6f1c2b7e-0000-4000-8000-000000000001",
        request_id="chatcmpl-x",
        session_id="6f1c2b7e-0000-4000-8000-000000000002",
        project="demo",
        model="demo/echo",
        provider="echo",
        created=1700000000.123456,
        messages=[{"role": "user", "content": TRICKY * 20_000}],
        content=TRICKY * 15_000,
        system_prompt="sys " * 10_000,
        params={"temperature": 0.1 + 0.2, "system_prompt_args": {"doc": "x" * 50_000}},
    )
    store = wiring.default_store()
    store.put_completions([record])
    back = store.get_completion(record.completion_id)
    assert back is not None
    assert orjson.dumps(back.model_dump(mode="json")) == orjson.dumps(record.model_dump(mode="json"))

    small = record.model_copy(
        update={
            "completion_id": "6f1c2b7e-0000-4000-8000-000000000003",
            "messages": [],
            "content": "small",
            "system_prompt": None,
            "params": {},
        }
    )
    store.put_completions([small])
    item = next(
        i
        for i in table_items()
        if i["pk"]["S"] == f"COMPLETION#{small.completion_id}" and i["sk"]["S"] == "COMPLETION"
    )
    assert "payload" not in item  # small records stay in the item


def test_a_large_record_that_could_not_be_written_is_queued_through_s3_and_arrives(
    module_client: TestClient, clean_aws: dict[str, str]
) -> None:
    client = module_client
    aws = clean_aws
    refusing = refuse_table_writes()
    messages = conversation(600_000, parts=4)
    r = client.post(CHAT, json={"model": "demo", "messages": messages})
    assert r.status_code == 200
    cid = r.json()["choices"][0]["completion_id"]

    messages_queued = queued_messages(aws["STORE_RETRY_QUEUE_URL"])
    (queued,) = messages_queued
    assert len(queued["Body"]) < 1000  # a pointer, not the records: SQS takes 256 KB at most
    assert json.loads(queued["Body"])["payload"].startswith("payloads/retry/")
    boto3.client("sqs").send_message(QueueUrl=aws["STORE_RETRY_QUEUE_URL"], MessageBody=queued["Body"])

    refusing.refuse = False
    assert drain(aws["STORE_RETRY_QUEUE_URL"]) == {"batchItemFailures": []}
    record = client.get(f"/api/v1/completions/{cid}").json()
    assert orjson.dumps(record["messages"]) == orjson.dumps(messages)
