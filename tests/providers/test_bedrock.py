"""BedrockProvider against a fake Bedrock runtime: real boto3, real botocore event-stream parsing."""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from handler import aws
from handler.config.models import BedrockModel
from handler.errors import InvalidRequest
from handler.providers.base import (
    Event,
    Finish,
    ModelCall,
    ProviderError,
    ProviderTimeout,
    TextDelta,
    ToolCallsDone,
    ToolSpec,
    UsageReport,
)
from handler.providers.bedrock import BedrockProvider, to_converse_messages
from handler.providers.tokens import count_tokens
from tests.fakes.bedrock_server import BedrockReply, FakeBedrock, ToolUse
from tests.providers.streams import collect, fails, run

MODEL_ID = "anthropic.claude-3-haiku-20240307-v1:0"
USER = [{"role": "user", "content": "Say hello"}]
PNG = b"\x89PNG\r\n\x1a\nfake-image-bytes"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeBedrock]:
    """One fake and one boto3 client for the module: building clients is the slow part."""
    with FakeBedrock() as fake, pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", fake.url)
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_BEARER_TOKEN_BEDROCK"):
            mp.delenv(name, raising=False)
        aws.reset_clients()
        yield fake
        aws.reset_clients()


@pytest.fixture
def fake(server: FakeBedrock) -> FakeBedrock:
    server.reset()
    server.default = BedrockReply()
    return server


def provider(**overrides: Any) -> BedrockProvider:
    return BedrockProvider(BedrockModel(provider="bedrock", model_id=MODEL_ID, **overrides))


def text(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def finishes(events: list[Event]) -> list[str]:
    return [e.reason for e in events if isinstance(e, Finish)]


# --- streaming ---------------------------------------------------------------------------------------


def test_text_stream_reassembles_with_usage(fake: FakeBedrock) -> None:
    fake.enqueue(BedrockReply(chunks=["Hel", "lo there", ",", " world!"], input_tokens=17, output_tokens=4))
    p = provider()
    assert p.supports_n is False
    events = run(p, ModelCall(messages=USER))

    assert [e for e in events if isinstance(e, TextDelta)] == [
        TextDelta(0, "Hel"),
        TextDelta(0, "lo there"),
        TextDelta(0, ","),
        TextDelta(0, " world!"),
    ]
    assert events[-2:] == [Finish(index=0, reason="stop"), UsageReport(prompt_tokens=17, completion_tokens=4)]
    assert fake.model_ids == [MODEL_ID]
    assert not fake.disconnected.is_set()  # finishing normally is not a disconnect


@pytest.mark.parametrize(
    ("stop_reason", "expected"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
    ],
)
def test_stop_reason_mapping(fake: FakeBedrock, stop_reason: str, expected: str) -> None:
    fake.enqueue(BedrockReply(text="ok", stop_reason=stop_reason))
    assert finishes(run(provider(), ModelCall(messages=USER))) == [expected]


def test_tool_use_assembles_across_fragments(fake: FakeBedrock) -> None:
    uses = [
        ToolUse(name="weather", input='{"city": "Paris", "unit": "C"}', id="tooluse_a"),
        ToolUse(name="time", input='{"tz": "Europe/Paris"}', id="tooluse_b"),
    ]
    fake.enqueue(BedrockReply(text="Let me check.", tool_uses=uses, fragment=4, stop_reason="tool_use"))
    events = run(provider(), ModelCall(messages=USER, tools=[ToolSpec("weather", "w", {})]))

    assert text(events) == "Let me check."
    (done,) = [e for e in events if isinstance(e, ToolCallsDone)]
    assert [(c.id, c.name, c.arguments) for c in done.calls] == [
        ("tooluse_a", "weather", '{"city": "Paris", "unit": "C"}'),
        ("tooluse_b", "time", '{"tz": "Europe/Paris"}'),
    ]
    assert events.index(done) + 1 == events.index(Finish(index=0, reason="tool_calls"))


def test_usage_is_estimated_without_metadata(fake: FakeBedrock) -> None:
    fake.enqueue(BedrockReply(text="Hello there, world!", usage=False))
    events = run(provider(), ModelCall(messages=USER, system="Be brief."))
    assert events[-1] == UsageReport(
        prompt_tokens=count_tokens("Be brief.") + count_tokens("Say hello"),
        completion_tokens=count_tokens("Hello there, world!"),
        estimated=True,
    )


# --- the Converse request ----------------------------------------------------------------------------


def test_request_shape_system_inference_config_and_extra_fields(fake: FakeBedrock) -> None:
    call = ModelCall(
        messages=USER,
        system="You are terse.",
        max_tokens=64,
        temperature=0.2,
        top_p=0.9,
        stop=["END"],
        seed=7,  # not a Converse field: dropped
        presence_penalty=0.5,
    )
    run(provider(additional_model_request_fields={"top_k": 40}), call)

    assert fake.bodies[0] == {
        "messages": [{"role": "user", "content": [{"text": "Say hello"}]}],
        "system": [{"text": "You are terse."}],
        "inferenceConfig": {"maxTokens": 64, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END"]},
        "additionalModelRequestFields": {"top_k": 40},
    }


def test_minimal_request_sends_only_messages(fake: FakeBedrock) -> None:
    run(provider(), ModelCall(messages=USER))
    assert fake.bodies[0] == {"messages": [{"role": "user", "content": [{"text": "Say hello"}]}]}


@pytest.mark.parametrize(
    ("tool_choice", "expected"),
    [
        (None, None),
        ("auto", {"auto": {}}),
        ("required", {"any": {}}),
        ({"type": "function", "function": {"name": "weather"}}, {"tool": {"name": "weather"}}),
    ],
)
def test_tool_config(fake: FakeBedrock, tool_choice: Any, expected: dict[str, Any] | None) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    call = ModelCall(
        messages=USER, tools=[ToolSpec("weather", "Weather by city", schema)], tool_choice=tool_choice
    )
    run(provider(), call)

    config = fake.bodies[0]["toolConfig"]
    assert config["tools"] == [
        {"toolSpec": {"name": "weather", "description": "Weather by city", "inputSchema": {"json": schema}}}
    ]
    assert config.get("toolChoice") == expected


def test_tool_choice_none_sends_no_tools(fake: FakeBedrock) -> None:
    run(provider(), ModelCall(messages=USER, tools=[ToolSpec("weather", "w", {})], tool_choice="none"))
    assert "toolConfig" not in fake.bodies[0]


def test_tool_choice_none_keeps_tools_when_the_conversation_has_tool_turns(fake: FakeBedrock) -> None:
    # Bedrock refuses toolUse/toolResult blocks without a toolConfig (the tool loop's last round).
    messages: list[dict[str, Any]] = [
        *USER,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "t1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "t1", "content": "sunny"},
    ]
    run(provider(), ModelCall(messages=messages, tools=[ToolSpec("weather", "w", {})], tool_choice="none"))
    config = fake.bodies[0]["toolConfig"]
    assert [t["toolSpec"]["name"] for t in config["tools"]] == ["weather"]
    assert "toolChoice" not in config


def test_conversation_with_image_tool_calls_and_results(fake: FakeBedrock) -> None:
    data_url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    messages: list[dict[str, Any]] = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this and the weather?"},
                {"type": "image_url", "image_url": {"url": data_url}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "t1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                },
                {"id": "t2", "type": "function", "function": {"name": "time", "arguments": ""}},
            ],
        },
        {"role": "tool", "tool_call_id": "t1", "content": "18C"},
        {"role": "tool", "tool_call_id": "t2", "content": [{"type": "text", "text": "noon"}]},
        {"role": "user", "content": "Thanks"},
    ]
    run(provider(), ModelCall(messages=messages, tools=[ToolSpec("weather", "w", {})]))

    sent = fake.bodies[0]["messages"]
    assert sent == [
        {
            "role": "user",
            "content": [
                {"text": "What is this and the weather?"},
                {"image": {"format": "png", "source": {"bytes": base64.b64encode(PNG).decode()}}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"toolUse": {"toolUseId": "t1", "name": "weather", "input": {"city": "Paris"}}},
                {"toolUse": {"toolUseId": "t2", "name": "time", "input": {}}},
            ],
        },
        {  # tool results and the next user turn merge: Converse wants roles to alternate
            "role": "user",
            "content": [
                {"toolResult": {"toolUseId": "t1", "content": [{"text": "18C"}]}},
                {"toolResult": {"toolUseId": "t2", "content": [{"text": "noon"}]}},
                {"text": "Thanks"},
            ],
        },
    ]


def test_system_messages_in_the_list_move_to_system() -> None:
    messages, system = to_converse_messages([{"role": "system", "content": "Extra rule."}, *USER])
    assert system == ["Extra rule."]
    assert messages == [{"role": "user", "content": [{"text": "Say hello"}]}]


@pytest.mark.parametrize(
    "url",
    ["https://example.com/cat.png", "data:image/tiff;base64,AAAA", "data:image/png;base64,@@not-base64@@"],
)
def test_unusable_images_are_invalid_requests(fake: FakeBedrock, url: str) -> None:
    content = [{"type": "image_url", "image_url": {"url": url}}]
    _, exc = fails(provider(), ModelCall(messages=[{"role": "user", "content": content}]))
    assert isinstance(exc, InvalidRequest)
    assert fake.requests == []  # refused before any call


# --- errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error_type", "status"),
    [
        ("ThrottlingException", 429),
        ("ServiceUnavailableException", 503),
        ("InternalServerException", 500),
        ("ModelNotReadyException", 429),
        ("ModelTimeoutException", 408),
    ],
)
def test_retryable_errors(fake: FakeBedrock, error_type: str, status: int) -> None:
    fake.enqueue(BedrockReply(error_type=error_type, error="Too many requests, please wait."))
    events, exc = fails(provider(), ModelCall(messages=USER))

    assert events == []
    assert isinstance(exc, ProviderError) and exc.retryable and exc.upstream_status == status
    assert error_type in str(exc)
    assert len(fake.requests) == 1  # botocore does not retry behind the service's back


def test_validation_error_is_not_retryable_and_keeps_the_message(fake: FakeBedrock) -> None:
    fake.enqueue(BedrockReply(error_type="ValidationException", error="max_tokens: must be <= 4096"))
    _, exc = fails(provider(), ModelCall(messages=USER))
    assert isinstance(exc, ProviderError) and not exc.retryable and exc.upstream_status == 400
    assert "ValidationException" in str(exc) and "max_tokens: must be <= 4096" in str(exc)
    assert fake.url not in str(exc)


def test_access_denied_does_not_leak_the_caller_arn(fake: FakeBedrock) -> None:
    arn = "arn:aws:sts::123456789012:assumed-role/gateway-role/fn"
    message = f"User: {arn} is not authorized to perform: bedrock:InvokeModelWithResponseStream"
    fake.enqueue(BedrockReply(error_type="AccessDeniedException", error=message))
    _, exc = fails(provider(), ModelCall(messages=USER))
    assert isinstance(exc, ProviderError) and not exc.retryable and exc.upstream_status == 403
    assert "access denied" in str(exc) and MODEL_ID in str(exc)
    assert arn not in str(exc) and "123456789012" not in str(exc)


def test_unknown_model_is_not_retryable(fake: FakeBedrock) -> None:
    fake.enqueue(BedrockReply(error_type="ResourceNotFoundException", error="Model not found"))
    _, exc = fails(provider(), ModelCall(messages=USER))
    assert isinstance(exc, ProviderError) and not exc.retryable and "not found" in str(exc)


def test_in_stream_exception_after_content_is_not_retryable(fake: FakeBedrock) -> None:
    fake.enqueue(BedrockReply(text="one two three", exception_after=2, error="model stream failed"))
    events, exc = fails(provider(), ModelCall(messages=USER))
    assert text(events) == "one two"
    assert isinstance(exc, ProviderError) and not exc.retryable
    assert "ModelStreamErrorException" in str(exc)


def test_in_stream_throttling_before_content_is_retryable(fake: FakeBedrock) -> None:
    fake.enqueue(BedrockReply(exception_after=0, exception_type="throttlingException", error="slow down"))
    events, exc = fails(provider(), ModelCall(messages=USER))
    assert events == []
    assert isinstance(exc, ProviderError) and exc.retryable and exc.upstream_status == 429


def test_corrupt_frame_is_a_malformed_response(fake: FakeBedrock) -> None:
    fake.enqueue(BedrockReply(text="one two", corrupt_after=1))
    events, exc = fails(provider(), ModelCall(messages=USER))
    assert text(events) == "one"
    assert isinstance(exc, ProviderError) and not exc.retryable and "malformed" in str(exc)


def test_garbage_body_is_a_malformed_response(fake: FakeBedrock) -> None:
    fake.enqueue(BedrockReply(body=b"\x00\x00\x00\x10garbage-garbage-garbage"))
    _, exc = fails(provider(), ModelCall(messages=USER))
    assert isinstance(exc, ProviderError) and not exc.retryable


def test_drop_mid_stream(fake: FakeBedrock) -> None:
    fake.enqueue(BedrockReply(text="one two three", drop_after=1))
    events, exc = fails(provider(), ModelCall(messages=USER))
    assert text(events) == "one"
    assert isinstance(exc, ProviderError) and not exc.retryable
    assert fake.url not in str(exc)


def test_stream_without_message_stop_ended_early(fake: FakeBedrock) -> None:
    fake.enqueue(BedrockReply(text="", stop_reason=None, usage=False))
    events, exc = fails(provider(), ModelCall(messages=USER))
    assert events == []
    assert isinstance(exc, ProviderError) and exc.retryable and "ended early" in str(exc)


def test_connection_refused_is_retryable(monkeypatch: pytest.MonkeyPatch, server: FakeBedrock) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", f"http://127.0.0.1:{port}")
    p = provider(region="eu-west-3")  # another region: a fresh client that reads the new endpoint
    _, exc = fails(p, ModelCall(messages=USER))
    assert isinstance(exc, ProviderError) and exc.retryable
    assert str(port) not in str(exc)


def test_read_timeout_is_a_provider_timeout(fake: FakeBedrock) -> None:
    import boto3
    from botocore.config import Config

    client = boto3.session.Session().client(
        "bedrock-runtime",
        region_name="us-east-1",
        config=Config(read_timeout=0.3, retries={"total_max_attempts": 1}),
    )
    fake.enqueue(BedrockReply(stall=True))
    model = BedrockModel(provider="bedrock", model_id=MODEL_ID)
    _, exc = fails(BedrockProvider(model, client=client), ModelCall(messages=USER))
    assert isinstance(exc, ProviderTimeout)


# --- no buffering, and cancellation reaches the upstream ----------------------------------------------


def test_first_token_arrives_while_upstream_still_holds_the_rest(fake: FakeBedrock) -> None:
    fake.enqueue(BedrockReply(text="first second third", hold=True))

    async def go() -> list[Event]:
        stream = provider().stream(ModelCall(messages=USER))
        first = await asyncio.wait_for(anext(stream), 5)  # a buffering provider would wait for the gate
        assert first == TextDelta(index=0, text="first")
        assert not fake.gate.is_open() and fake.completed == 0
        fake.release()
        return [first, *[e async for e in stream]]

    events = asyncio.run(go())
    assert text(events) == "first second third" and finishes(events) == ["stop"]


def test_closing_the_stream_early_disconnects_the_upstream(fake: FakeBedrock) -> None:
    fake.enqueue(BedrockReply(text="first second third", hold=True))

    async def go() -> None:
        stream = provider().stream(ModelCall(messages=USER))
        assert isinstance(await asyncio.wait_for(anext(stream), 5), TextDelta)
        await stream.aclose()  # type: ignore[attr-defined]

    asyncio.run(go())
    assert fake.disconnected.wait(5)  # the held read was cut, not left to time out
    assert fake.completed == 0


def test_cancelling_a_stalled_call_disconnects_the_upstream(fake: FakeBedrock) -> None:
    fake.enqueue(BedrockReply(stall=True))

    async def go() -> None:
        task = asyncio.create_task(collect(provider().stream(ModelCall(messages=USER))))
        assert await asyncio.to_thread(fake.request_received.wait, 5)
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())
    assert fake.disconnected.wait(5)
