"""How the OpenAI-compatible provider reads an event stream (httpx-sse underneath).

First as pure parsing (`_sse_chunks` over an in-memory body cut at chosen places), then through the
provider against a real local HTTP server that writes each piece as its own flushed chunk with a
pause between them, so that events arrive split across TCP reads.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from handler.config.models import OpenAIModel
from handler.providers.base import Event, Finish, ModelCall, ProviderError, TextDelta, UsageReport
from handler.providers.openai_compat import OpenAIProvider, _Malformed, _sse_chunks
from tests.fakes.http_server import FakeHTTPServer, Request, Response
from tests.providers.streams import fails, run

USER = [{"role": "user", "content": "Say hello"}]


def chunk(content: str | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    delta = {} if content is None else {"content": content}
    return {
        "id": "c",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }


def data(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"


# --- pure parsing --------------------------------------------------------------------------------


class Pieces(httpx.AsyncByteStream):
    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            yield piece


def parse(pieces: list[bytes], content_type: str = "text/event-stream") -> list[dict[str, Any] | None]:
    async def go() -> list[dict[str, Any] | None]:
        response = httpx.Response(200, headers={"Content-Type": content_type}, stream=Pieces(pieces))
        return [c async for c in _sse_chunks(response)]

    return asyncio.run(go())


# Everything a server may put in a stream that carries two chunks: comments, named events, ids,
# retry, a two-line data field, `data:` without its space, CRLF and bare CR line ends, raw U+2028
# and NEL inside a JSON string (line ends for str.splitlines, not for SSE), then [DONE].
STREAM = (
    b": keep-alive\n\n"
    b"retry: 3000\n"
    b"id: 1\n"
    b"event: message\n"
    b'data: {"id": "c", "choices": [{"index": 0,\n'
    b'data: "delta": {"content": "a\xe2\x80\xa8b\xc2\x85c \xc3\xa9"}, "finish_reason": null}]}\r\n'
    b"\r\n"
    b": another comment\r"
    b'data:{"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}\r'
    b"\r"
    b"event: ping\n\n"  # an event without data is no chunk
    b"data: [DONE]\n\n"
)
EXPECTED = [
    {
        "id": "c",
        "choices": [{"index": 0, "delta": {"content": "a\u2028b\x85c \u00e9"}, "finish_reason": None}],
    },
    {"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    None,
]


@pytest.mark.unit
def test_a_stream_read_whole() -> None:
    assert parse([STREAM]) == EXPECTED


@pytest.mark.unit
def test_a_stream_cut_in_two_at_every_byte() -> None:
    for at in range(1, len(STREAM)):
        assert parse([STREAM[:at], STREAM[at:]]) == EXPECTED, f"cut at {at}: {STREAM[:at][-20:]!r}"


@pytest.mark.unit
def test_a_stream_read_one_byte_at_a_time() -> None:
    assert parse([STREAM[i : i + 1] for i in range(len(STREAM))]) == EXPECTED


@pytest.mark.unit
def test_the_bodys_end_closes_a_last_event_without_its_blank_line() -> None:
    assert parse([data(chunk("x"))[:-2]]) == [chunk("x")]
    assert parse([data(chunk("x"))[:-1]]) == [chunk("x")]
    assert parse([b"data: [DONE]"]) == [None]


@pytest.mark.unit
def test_empty_and_comment_only_bodies_have_no_chunks() -> None:
    assert parse([]) == []
    assert parse([b"\n\n", b"\r\n"]) == []
    assert parse([b": keep-alive\n\n", b": keep-alive\n\n"]) == []
    assert parse([b"data:\n\n"]) == []  # an empty data field is no event (SSE spec)


@pytest.mark.unit
def test_any_content_type_is_read_as_an_event_stream() -> None:
    assert parse([data(chunk("x"))], content_type="application/json") == [chunk("x")]
    assert parse([data(chunk("x"))], content_type="text/plain; charset=utf-8") == [chunk("x")]


@pytest.mark.unit
def test_unknown_fields_after_the_start_are_ignored() -> None:
    assert parse([data(chunk("x")), b"foo: bar\n", data(chunk("y"))]) == [chunk("x"), chunk("y")]


@pytest.mark.unit
@pytest.mark.parametrize(
    "pieces",
    [
        [b"<html><body>Bad gateway page</body></html>"],
        [b'{"id": "x", "object": "chat.completion", "choices": []}'],
        [b"\x00\xff\xfe garbage \x89PNG"],
        [b"\n\r\n", b"<ht", b"ml>"],  # blank lines first, the start cut in pieces
        [b"dat", b"a {not sse}\n\n"],
        [b"data"],  # the body ends before a colon
        [b"\xef\xbb\xbfdata: [DONE]\n\n"],  # a byte order mark was never accepted
    ],
)
def test_a_body_that_does_not_start_like_sse_is_malformed(pieces: list[bytes]) -> None:
    with pytest.raises(_Malformed, match="not an event stream"):
        parse(pieces)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("body", "message"),
    [(b"data: {not json\n\n", "invalid JSON"), (b'data: ["a list"]\n\n', "not an object")],
)
def test_data_that_is_not_a_json_object_is_malformed(body: bytes, message: str) -> None:
    with pytest.raises(_Malformed, match=message):
        parse([body])


# --- through the provider, split across TCP reads ------------------------------------------------


class PiecesServer:
    """Answers every request with `pieces`, each one flushed chunk, `pause_s` apart."""

    def __init__(self) -> None:
        self.pieces: list[bytes] = []
        self.content_type = "text/event-stream"
        self.pause_s = 0.01
        self.server = FakeHTTPServer(self.handle)

    async def handle(self, request: Request, response: Response) -> None:
        await response.start(200, {"Content-Type": self.content_type})
        for number, piece in enumerate(self.pieces):
            if number:
                await asyncio.sleep(self.pause_s)
            await response.write(piece)
        await response.end()

    def provider(self) -> OpenAIProvider:
        model = OpenAIModel(provider="openai", base_url=f"{self.server.url}/v1", model="up-model")
        return OpenAIProvider(model, secrets=lambda name: "")


@pytest.fixture
def upstream() -> Iterator[PiecesServer]:
    fake = PiecesServer()
    with fake.server:
        yield fake


def text(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def test_events_split_across_reads_anywhere(upstream: PiecesServer) -> None:
    first, second = data(chunk("Hel")), data(chunk("lo \u2028 w\u00f6rld"))
    finish = data(chunk(finish="stop"))[:-2]  # its blank line comes as CRLF CRLF, cut after a CR
    usage = data({"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 2}})
    inside = second.index("\u2028".encode()) + 1  # inside the 3-byte UTF-8 of U+2028
    upstream.pieces = [
        b"da",  # inside the field name
        first[2:20],  # inside the JSON
        first[20:-1],  # between the two newlines of the blank line
        first[-1:] + second[:inside],
        second[inside:] + finish + b"\r",
        b"\n\r\n" + usage,
        b"data: [DONE]\n\n",
    ]
    events = run(upstream.provider(), ModelCall(messages=USER))
    assert [e for e in events if isinstance(e, TextDelta)] == [
        TextDelta(0, "Hel"),
        TextDelta(0, "lo \u2028 w\u00f6rld"),
    ]
    assert events[-2:] == [Finish(0, "stop"), UsageReport(prompt_tokens=4, completion_tokens=2)]


def test_comments_and_other_fields_between_events_are_skipped(upstream: PiecesServer) -> None:
    upstream.pieces = [
        b": connected\n\n",
        b"event: message\nid: 7\n" + data(chunk("a")),
        b": keep-alive\n\nretry: 100\n\n",
        data(chunk(" b", finish="stop")),
        b"data: [DONE]\n\n",
        b": after the end\n\n",  # read to the end (the connection is reused), never parsed as a chunk
    ]
    events = run(upstream.provider(), ModelCall(messages=USER))
    assert text(events) == "a b"
    assert [e for e in events if isinstance(e, Finish)] == [Finish(0, "stop")]


def test_a_stream_ending_without_done_after_its_finish_is_complete(upstream: PiecesServer) -> None:
    upstream.pieces = [data(chunk("a")), data(chunk(finish="length"))[:-1]]  # no [DONE], no last blank line
    events = run(upstream.provider(), ModelCall(messages=USER))
    assert text(events) == "a" and isinstance(events[-1], UsageReport)
    assert Finish(0, "length") in events


def test_a_wrongly_labelled_event_stream_is_still_read(upstream: PiecesServer) -> None:
    upstream.content_type = "application/json"
    upstream.pieces = [data(chunk("ok", finish="stop")), b"data: [DONE]\n\n"]
    assert text(run(upstream.provider(), ModelCall(messages=USER))) == "ok"


def test_comments_then_the_end_is_a_stream_that_ended_early(upstream: PiecesServer) -> None:
    upstream.pieces = [b": processing\n\n", b": processing\n\n"]
    events, exc = fails(upstream.provider(), ModelCall(messages=USER))
    assert events == []
    assert isinstance(exc, ProviderError) and exc.retryable and "ended early" in str(exc)


def test_html_after_blank_lines_is_a_malformed_response(upstream: PiecesServer) -> None:
    upstream.pieces = [b"\r\n", b"\n<!doctype html>", b"<html>Bad gateway</html>"]
    events, exc = fails(upstream.provider(), ModelCall(messages=USER))
    assert events == []
    assert isinstance(exc, ProviderError) and not exc.retryable
    assert "malformed upstream response (not an event stream)" in str(exc)
