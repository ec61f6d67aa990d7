"""A client that leaves still leaves a record (issue 11, B7): `cancelled`, with any partial text.

Through the real server (uvicorn on 127.0.0.1) and a real socket the test closes, as a client
that gives up does: before the first token (streamed or not) and in the middle of a non-streamed
answer, which the client never sees. The record is what the operator has to find out what happened.
"""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.conftest import AUTH
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.streaming.conftest import CHAT, Gateway, chat, project, records


def send_then_leave(gateway: Gateway, body: dict[str, object], until: object, settle_s: float = 0.0) -> None:
    """POST `body` on a raw socket, wait for `until` (a threading.Event) and `settle_s` more, then
    close the socket."""
    raw = json.dumps(body).encode()
    host, port = gateway.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            f"POST {CHAT} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {AUTH['Authorization']}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(raw)}\r\n\r\n".encode()
            + raw
        )
        assert until.wait(5)  # type: ignore[attr-defined]
        time.sleep(settle_s)  # let the gateway read what was sent (a wait, not a timing assertion)


@pytest.mark.parametrize("stream", [True, False])
def test_a_client_leaving_before_the_first_token_leaves_a_cancelled_record(
    gateway: Gateway, openai_fake: FakeOpenAI, stream: bool
) -> None:
    model = project(
        "leaves-early", {"m": {"provider": "openai", "base_url": openai_fake.base_url, "model": "m"}}
    )
    openai_fake.enqueue(Reply(stall=True))  # headers, then nothing until the gateway hangs up
    send_then_leave(gateway, chat(model, stream=stream), openai_fake.request_received)
    assert openai_fake.disconnected.wait(5), "the upstream call outlived the client"
    assert gateway.saves.wait(1) == ["cancelled"]
    (record,) = records()
    assert record["status"] == "cancelled" and record["content"] == ""
    assert record["project"] == model and record["ttft_ms"] is None
    assert record["messages"][-1]["content"] == "Hello there, streaming world"


def test_a_client_leaving_a_non_streamed_answer_leaves_a_cancelled_record_with_the_partial_text(
    gateway: Gateway, openai_fake: FakeOpenAI
) -> None:
    model = project(
        "leaves-late", {"m": {"provider": "openai", "base_url": openai_fake.base_url, "model": "m"}}
    )
    openai_fake.enqueue(Reply(text="Hello and then much more", hold=True))  # "Hello", then held
    # The gateway reads "Hello" off its upstream socket within the settle time, then the client goes.
    send_then_leave(gateway, chat(model, stream=False), openai_fake.first_token_sent, settle_s=0.5)
    # The socket is closed: the answer being gathered is cancelled, and so is the upstream call.
    assert openai_fake.disconnected.wait(5), "the upstream call outlived the client"
    assert not openai_fake.gate.is_open() and openai_fake.completed == 0
    assert gateway.saves.wait(1) == ["cancelled"]
    (record,) = records()
    assert record["status"] == "cancelled" and record["content"] == "Hello"
    assert record["ttft_ms"] is not None and record["finish_reason"] is None
