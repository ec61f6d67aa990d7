"""The SSE stream, byte for byte as spec/WIRE-FORMAT.md says, on a real socket (echo model)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.conftest import EVENTS_DIR
from tests.streaming.conftest import CHAT, Gateway, chat, data_lines, project, records


def stream(gateway: Gateway, body: dict[str, Any]) -> tuple[dict[str, str], str, list[Any]]:
    with gateway.client() as client, client.stream("POST", CHAT, json=body) as response:
        assert response.status_code == 200, response.read()
        raw = response.read().decode()
        return dict(response.headers), raw, list(data_lines(iter(raw.split("\n"))))


def test_every_chunk_has_the_wire_fields_and_the_stream_ends_with_done(gateway: Gateway) -> None:
    headers, raw, events = stream(gateway, chat("demo", "Hello there, world"))

    assert headers["content-type"].startswith("text/event-stream")
    assert "event:" not in raw
    assert raw.endswith("data: [DONE]\n\n")
    assert all(block.startswith("data: ") for block in raw.split("\n\n") if block)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    request_ids = {c["id"] for c in chunks}
    assert len(request_ids) == 1 and request_ids.pop().startswith("chatcmpl-")
    for chunk in chunks:
        assert chunk["object"] == "chat.completion.chunk"
        assert isinstance(chunk["created"], int)
        assert chunk["model"] == "demo/echo"
        uuid.UUID(chunk["session_id"])
        assert chunk["usage"] is None  # no include_usage: no usage anywhere
        (choice,) = chunk["choices"]
        delta = choice["delta"]
        assert choice["index"] == 0
        assert delta["id"] == choice["completion_id"]
        assert delta["role"] == "assistant"
        assert isinstance(delta["content"], str)
    # Every chunk but the last carries text; the last has empty content and the finish reason.
    assert all(
        c["choices"][0]["delta"]["content"] and c["choices"][0]["finish_reason"] is None for c in chunks[:-1]
    )
    assert chunks[-1]["choices"][0]["delta"]["content"] == ""
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert "".join(c["choices"][0]["delta"]["content"] for c in chunks) == "Hello there, world"
    assert len(chunks) == 1 + len(["Hello", " there", ",", " world"])


def test_usage_chunk_only_when_asked_and_always_stored(gateway: Gateway) -> None:
    _, _, plain = stream(gateway, chat("demo", "one two three"))
    assert all(c == "[DONE]" or c["usage"] is None for c in plain)

    _, _, events = stream(gateway, chat("demo", "one two three", stream_options={"include_usage": True}))
    assert events[-1] == "[DONE]"
    usage_chunk = events[-2]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["completion_tokens"] == 3
    assert usage_chunk["usage"]["total_tokens"] == usage_chunk["usage"]["prompt_tokens"] + 3
    assert all(c["usage"] is None for c in events[:-2])

    stored = records()
    assert len(stored) == 2
    for record in stored:  # usage stored for both, asked for or not
        assert record["usage"]["completion_tokens"] == 3
        assert record["usage"]["prompt_tokens"] == usage_chunk["usage"]["prompt_tokens"]


def test_n_choices_interleave_each_with_its_own_completion_id(gateway: Gateway) -> None:
    _, _, events = stream(gateway, chat("demo", "a b c d", n=3, stream_options={"include_usage": True}))
    chunks = [e for e in events if e != "[DONE]" and e["choices"]]
    order = [c["choices"][0]["index"] for c in chunks]
    assert order[:6] == [0, 1, 2, 0, 1, 2]  # interleaved by index, not one choice after another
    ids = {c["choices"][0]["index"]: c["choices"][0]["completion_id"] for c in chunks}
    assert len(set(ids.values())) == 3
    for index in range(3):
        mine = [c["choices"][0] for c in chunks if c["choices"][0]["index"] == index]
        assert {m["completion_id"] for m in mine} == {ids[index]}
        assert "".join(m["delta"]["content"] for m in mine) == "a b c d"
        assert mine[-1]["finish_reason"] == "stop" and mine[-1]["delta"]["content"] == ""
    assert events[-2]["usage"]["completion_tokens"] == 12

    stored = records()
    assert {r["completion_id"]: r["index"] for r in stored} == {cid: i for i, cid in ids.items()}
    assert all(r["content"] == "a b c d" and r["status"] == "completed" for r in stored)


def test_client_tool_calls_stream_in_the_delta(gateway: Gateway) -> None:
    project("toolish", {"echo": {"provider": "echo", "tool_mode": "call_all"}})
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    _, _, events = stream(gateway, chat("toolish", "weather in Paris", tools=tools))
    chunks = events[:-1]
    calls_chunk, last = chunks
    delta = calls_chunk["choices"][0]["delta"]
    assert delta["content"] == "" and delta["role"] == "assistant"
    (call,) = delta["tool_calls"]
    assert call["index"] == 0 and call["type"] == "function" and call["id"]
    assert call["function"] == {"name": "lookup", "arguments": '{"query":"weather in Paris"}'}
    assert last["choices"][0]["finish_reason"] == "tool_calls"


def test_ttft_header_and_record_and_the_record_exists_when_the_stream_ends(gateway: Gateway) -> None:
    with gateway.client() as client, client.stream("POST", CHAT, json=chat("demo", "Hi")) as response:
        ttft = float(response.headers["x-ttft-ms"])
        events = list(data_lines(response.iter_lines()))
        assert events[-1] == "[DONE]"
        # Read at once, no waiting: the record was written before the last bytes were sent.
        (record,) = records()
    assert record["status"] == "completed"
    assert record["content"] == "Hi"
    assert record["ttft_ms"] == pytest.approx(ttft, abs=0.06)
    assert 0 < ttft < 5000
    assert record["completion_id"] == events[0]["choices"][0]["completion_id"]
    assert record["session_id"] == events[0]["session_id"]


def test_error_before_the_first_token_is_a_plain_json_error(gateway: Gateway) -> None:
    with gateway.client() as client:
        response = client.post(CHAT, json=chat("no-such-project"))
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/json")
        assert response.json()["error"]["message"].startswith("EntityNotFound: ")

        response = client.post(CHAT, json=chat("demo", n=1000))
        assert response.status_code == 400
        assert response.json()["error"]["param"] == "n"


def test_the_streaming_event_streams_when_replayed_as_the_web_adapter_does(gateway: Gateway) -> None:
    """events/chat_completion_stream.json is an API Gateway REST event for the streamed route; the
    Lambda Web Adapter turns it into this HTTP request to uvicorn."""
    event = json.loads((EVENTS_DIR / "chat_completion_stream.json").read_text())
    assert event["resource"] == event["path"] == CHAT and event["httpMethod"] == "POST"
    body = json.loads(event["body"])
    assert body["stream"] is True
    with (
        gateway.client() as client,
        client.stream("POST", event["path"], content=event["body"], headers=event["headers"]) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = list(data_lines(response.iter_lines()))
    assert events[-1] == "[DONE]" and events[-2]["choices"] == [] and events[-2]["usage"]["total_tokens"] > 0
    assert (
        "".join(e["choices"][0]["delta"]["content"] for e in events[:-2]) == body["messages"][-1]["content"]
    )
