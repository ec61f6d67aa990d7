"""Failures around a stream: before the first token (plain JSON error), mid-stream (an error event,
then `[DONE]`, a failed record with the partial text), and a client that leaves (the upstream call
is cancelled, the record says so)."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from tests.conftest import AUTH
from tests.fakes.bedrock_server import BedrockReply, FakeBedrock
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.streaming.conftest import CHAT, Gateway, chat, data_lines, project, records


def upstream(kind: str, openai_fake: FakeOpenAI, bedrock: FakeBedrock) -> str:
    if kind == "openai":
        return project(
            "up-openai", {"m": {"provider": "openai", "base_url": openai_fake.base_url, "model": "m"}}
        )
    return project("up-bedrock", {"m": {"provider": "bedrock", "model_id": "anthropic.fake-v1:0"}})


@pytest.fixture(params=["openai", "bedrock"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_upstream_dying_mid_stream_sends_an_error_event_then_done(
    gateway: Gateway, openai_fake: FakeOpenAI, bedrock_fake: FakeBedrock, kind: str
) -> None:
    model = upstream(kind, openai_fake, bedrock_fake)
    if kind == "openai":
        openai_fake.enqueue(Reply(text="one two three four", drop_after=2))  # connection cut
    else:
        # An in-stream exception frame, after two deltas.
        bedrock_fake.enqueue(BedrockReply(text="one two three four", exception_after=2))

    with gateway.client() as client, client.stream("POST", CHAT, json=chat(model)) as response:
        assert response.status_code == 200
        events = list(data_lines(response.iter_lines()))

    *chunks, error_event, done = events
    assert done == "[DONE]"
    assert "".join(c["choices"][0]["delta"]["content"] for c in chunks) == "one two"
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks)  # no pretend ending
    error = error_event["error"]
    assert set(error) >= {"message", "type", "code"} and error["type"] == "upstream_error"
    assert "127.0.0.1" not in error["message"]  # no upstream URL leaks to the client

    assert gateway.saves.wait(1) == ["failed"]
    (record,) = records()
    assert record["status"] == "failed" and record["content"] == "one two"
    assert record["error"]["type"] == "upstream_error" and record["finish_reason"] is None
    assert record["ttft_ms"] is not None
    assert record["usage"]["completion_tokens"] == 2  # estimated: the upstream never reported it


def test_client_disconnect_cancels_the_upstream_call(
    gateway: Gateway, openai_fake: FakeOpenAI, bedrock_fake: FakeBedrock, kind: str
) -> None:
    model = upstream(kind, openai_fake, bedrock_fake)
    fake: Any = openai_fake if kind == "openai" else bedrock_fake
    reply: Any = Reply if kind == "openai" else BedrockReply
    fake.enqueue(reply(text="Hello and then much more", hold=True))

    with gateway.client() as client, client.stream("POST", CHAT, json=chat(model)) as response:
        first = next(data_lines(response.iter_lines()))
        assert first["choices"][0]["delta"]["content"] == "Hello"
    # The client is gone; the upstream is still held at its gate, so only a cancel ends its call.
    assert fake.disconnected.wait(5), "the upstream call outlived the client"
    assert not fake.gate.is_open() and fake.completed == 0
    assert gateway.saves.wait(1) == ["cancelled"]
    (record,) = records()
    assert record["status"] == "cancelled" and record["content"] == "Hello"
    assert record["completion_id"] == first["choices"][0]["completion_id"]


def test_upstream_error_before_the_first_token_is_a_json_error(
    gateway: Gateway, openai_fake: FakeOpenAI
) -> None:
    project("bad", {"m": {"provider": "openai", "base_url": openai_fake.base_url, "model": "m"}})
    openai_fake.enqueue(Reply(status=400, error="model does not exist"))
    with gateway.client() as client:
        response = client.post(CHAT, json=chat("bad"))
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]["type"] == "upstream_error"
    assert len(openai_fake.requests) == 1  # a 400 is not retried
    assert gateway.saves.wait(1) == ["failed"]


@pytest.mark.parametrize("stream", [True, False])
def test_client_leaving_before_the_first_token_cancels_the_upstream_call(
    gateway: Gateway, openai_fake: FakeOpenAI, stream: bool
) -> None:
    model = project("stalls", {"m": {"provider": "openai", "base_url": openai_fake.base_url, "model": "m"}})
    openai_fake.enqueue(Reply(stall=True))  # headers, then nothing: no deadline would end this
    body = json.dumps(chat(model, stream=stream)).encode()
    host, port = gateway.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            f"POST {CHAT} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {AUTH['Authorization']}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        assert openai_fake.request_received.wait(5)
    # The client is gone before any token: the gateway must not keep the upstream call open.
    assert openai_fake.disconnected.wait(5), "the upstream call outlived the client"
    # ... and the request is still recorded, as cancelled (waited for here, so that the record does
    # not land in the next test's window).
    assert gateway.saves.wait(1) == ["cancelled"]
