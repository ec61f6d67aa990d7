"""The SSE chunks of a streamed completion, byte for byte as ../shared/spec/WIRE-FORMAT.md shows them.

Pure functions: no server. The expected bytes are written out by hand (not built with the code under
test), so that a change of key order, spacing or escaping on the wire fails here.
"""

from __future__ import annotations

import json

import pytest

from handler.contract import sse

pytestmark = pytest.mark.unit

REQUEST_ID = "chatcmpl-X"
CREATED = 1720712536
MODEL = "proj/m"
SESSION = "5b0a9a8e-8f5e-4e1e-9d8a-3a1f2b0c4d5e"
C0 = "0e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b"
C1 = "9f8e7d6c-5b4a-4c3d-8e2f-1a0b9c8d7e6f"

HEAD = (
    b'data: {"id":"chatcmpl-X","object":"chat.completion.chunk","created":1720712536,"model":"proj/m",'
    b'"session_id":"5b0a9a8e-8f5e-4e1e-9d8a-3a1f2b0c4d5e"'
)


def formatter() -> sse.ChunkFormatter:
    return sse.ChunkFormatter(REQUEST_ID, CREATED, MODEL, SESSION, [C0, C1])


def choice(index: int, cid: str, finish: bytes, delta: bytes) -> bytes:
    return (
        HEAD
        + b',"usage":null,"choices":[{"index":%d,"completion_id":"%s","finish_reason":%s,"delta":%s}]}\n\n'
        % (index, cid.encode(), finish, delta)
    )


def payload(event: bytes) -> object:
    """The JSON of one `data:` event, checking its framing on the way."""
    assert event.startswith(b"data: ") and event.endswith(b"\n\n")
    assert event.count(b"\n") == 2  # one line, then the blank line: no `event:` lines
    return json.loads(event[len(b"data: ") : -2])


def test_done_is_the_last_event() -> None:
    assert sse.DONE == b"data: [DONE]\n\n"


def test_content_chunk() -> None:
    assert formatter().content(0, "Hel") == choice(
        0, C0, b"null", b'{"id":"%s","role":"assistant","content":"Hel"}' % C0.encode()
    )


def test_content_of_another_choice_carries_its_own_index_and_completion_id() -> None:
    assert formatter().content(1, "lo") == choice(
        1, C1, b"null", b'{"id":"%s","role":"assistant","content":"lo"}' % C1.encode()
    )


@pytest.mark.parametrize(
    ("text", "encoded"),
    [
        ("", b'""'),
        ('say "hi"\n\tok\\', b'"say \\"hi\\"\\n\\tok\\\\"'),
        ("h\u00e9llo \u4e16\u754c \U0001f600", '"h\u00e9llo \u4e16\u754c \U0001f600"'.encode()),  # raw UTF-8
        ("\x00\x1f", b'"\\u0000\\u001f"'),
        ("</script>", b'"</script>"'),
        ("data: [DONE]\n\n", b'"data: [DONE]\\n\\n"'),  # a newline never ends the event early
    ],
)
def test_content_is_json_encoded_on_one_line(text: str, encoded: bytes) -> None:
    event = formatter().content(0, text)
    assert event == choice(
        0, C0, b"null", b'{"id":"%s","role":"assistant","content":%s}' % (C0.encode(), encoded)
    )
    data = payload(event)
    assert isinstance(data, dict) and data["choices"][0]["delta"]["content"] == text


def test_the_prebuilt_content_chunk_is_the_generic_event_of_the_same_object() -> None:
    fmt = formatter()
    event = fmt.content(1, "x")
    assert event == sse.event(payload(event))


@pytest.mark.parametrize("reason", ["stop", "length", "content_filter", "tool_calls"])
def test_finish_chunk_has_empty_content_and_the_reason(reason: str) -> None:
    assert formatter().finish(0, reason) == choice(
        0, C0, b'"%s"' % reason.encode(), b'{"id":"%s","role":"assistant","content":""}' % C0.encode()
    )


def test_tool_calls_chunk() -> None:
    calls = [
        {
            "id": "call_a",
            "type": "function",
            "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
        },
        {"id": "call_b", "type": "function", "function": {"name": "time", "arguments": "{}"}},
    ]
    delta = (
        b'{"id":"%s","role":"assistant","content":"","tool_calls":['
        b'{"index":0,"id":"call_a","type":"function","function":{"name":"weather","arguments":"{\\"city\\":\\"Paris\\"}"}},'
        b'{"index":1,"id":"call_b","type":"function","function":{"name":"time","arguments":"{}"}}]}'
    ) % C1.encode()
    assert formatter().tool_calls(1, calls) == choice(1, C1, b"null", delta)


def test_usage_chunk_has_an_empty_choices_list_and_the_totals() -> None:
    assert formatter().usage(5, 3) == HEAD + (
        b',"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}\n\n'
    )


def test_error_event() -> None:
    event = sse.error_event("the model provider failed mid-answer", "upstream_error", "upstream_error")
    assert event == (
        b'data: {"error":{"message":"the model provider failed mid-answer","type":"upstream_error",'
        b'"code":"upstream_error","param":null}}\n\n'
    )


def test_every_chunk_is_one_data_line_with_the_shared_fields() -> None:
    fmt = formatter()
    events = [
        fmt.content(0, "a"),
        fmt.tool_calls(0, []),
        fmt.finish(1, "length"),
        fmt.usage(0, 0),
    ]
    for event in events:
        data = payload(event)
        assert isinstance(data, dict)
        assert {k: data[k] for k in ("id", "object", "created", "model", "session_id")} == {
            "id": REQUEST_ID,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": MODEL,
            "session_id": SESSION,
        }
        for c in data["choices"]:
            assert c["delta"]["id"] == c["completion_id"] and c["delta"]["role"] == "assistant"
            assert isinstance(c["delta"]["content"], str)
