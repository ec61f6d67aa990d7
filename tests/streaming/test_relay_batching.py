"""How the stream's events are cut into writes, and what fills long silences, seen on the socket.

uvicorn sends each ASGI body message as one HTTP/1.1 chunk (RFC 9112 §7.1, chunked transfer
coding), so reading the chunks shows the messages: events that were ready together share one, the
first event and an event that is alone go out at once in their own. During a long silence (a
server-side tool round) `: keep-alive` comment lines keep idle timeouts from cutting the stream: a
line starting with a colon is a comment that every SSE client ignores (WHATWG HTML, "Server-sent
events", "Interpreting an event stream"); API Gateway cuts a streamed response after 5 minutes idle.
"""

from __future__ import annotations

import json
import socket
from typing import Any
from urllib.parse import urlsplit

import pytest

from handler.settings import get_settings
from tests.conftest import AUTH
from tests.streaming.conftest import CHAT, Gateway, chat, data_lines, project

WORDS = " ".join(f"word{i}" for i in range(40))


def http_chunks(gateway: Gateway, body: dict[str, Any]) -> list[bytes]:
    """The response body's HTTP chunks, one per ASGI body message, as the server wrote them."""
    url = urlsplit(gateway.url)
    payload = json.dumps(body).encode()
    head = (
        f"POST {CHAT} HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: application/json\r\n"
        f"Authorization: {AUTH['Authorization']}\r\nContent-Length: {len(payload)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(head + payload)
        stream = sock.makefile("rb")
        status = stream.readline()
        assert b" 200 " in status, status
        headers = {}
        while (line := stream.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        assert headers.get("transfer-encoding") == "chunked"
        chunks = []
        while True:
            size = int(stream.readline().split(b";")[0], 16)
            if size == 0:
                return chunks
            chunks.append(stream.read(size))
            assert stream.read(2) == b"\r\n"


def data_events(chunk: bytes) -> int:
    return chunk.count(b"data: ")


def test_events_ready_together_share_a_write_after_the_first_which_goes_alone(gateway: Gateway) -> None:
    project("batched", {"fast": {"provider": "echo"}})  # no I/O between tokens: all ready at once

    chunks = http_chunks(gateway, chat("batched", WORDS))

    events = list(data_lines(iter(b"".join(chunks).decode().split("\n"))))
    text = "".join(e["choices"][0]["delta"]["content"] for e in events[:-1])
    assert text == WORDS and events[-1] == "[DONE]"  # the same stream, byte for byte parsed
    assert data_events(chunks[0]) == 1  # the first token is never held back for the others
    assert data_events(chunks[1]) > 1  # the rest, ready together, in one write
    assert len(chunks) < len(events) // 4


def test_an_event_that_is_alone_goes_out_alone(gateway: Gateway) -> None:
    project("trickle", {"slow": {"provider": "echo", "tokens_per_second": 40}})

    chunks = http_chunks(gateway, chat("trickle", "one two three four"))

    # Each token came after a pause: each was sent when it came, not kept for the next one; the
    # last one and the finish chunk were ready together.
    assert [data_events(c) for c in chunks] == [1, 1, 1, 2, 1]
    assert chunks[-1] == b"data: [DONE]\n\n"


def test_silences_get_keep_alive_comments_and_the_events_are_unchanged(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    project("pauses", {"slow": {"provider": "echo", "tokens_per_second": 4}})  # 250 ms between tokens
    monkeypatch.setattr(get_settings(), "sse_keepalive_s", 0.05)

    chunks = http_chunks(gateway, chat("pauses", "one two three"))

    raw = b"".join(chunks).decode()
    assert raw.count(": keep-alive\n\n") >= 2  # at least one in each of the two silences
    blocks = [b for b in raw.split("\n\n") if b]
    assert all(b.startswith("data: ") or b == ": keep-alive" for b in blocks)
    comments = [c for c in chunks if c == b": keep-alive\n\n"]
    assert comments, "a comment is its own write, never inside an event"
    events = list(data_lines(line for line in raw.split("\n") if not line.startswith(":")))
    assert "".join(e["choices"][0]["delta"]["content"] for e in events[:-1]) == "one two three"
    assert raw.endswith("data: [DONE]\n\n")  # nothing after the end


def test_no_keep_alive_comment_when_the_model_is_never_silent_that_long(gateway: Gateway) -> None:
    project("brisk", {"slow": {"provider": "echo", "tokens_per_second": 40}})

    raw = b"".join(http_chunks(gateway, chat("brisk", "one two three"))).decode()

    assert get_settings().sse_keepalive_s == 15.0  # the default
    assert ": keep-alive" not in raw
