"""OpenAIProvider against a real HTTP fake: real httpx, real SSE parsing, real sockets."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from handler.config.models import OpenAIModel
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
from handler.providers.openai_compat import OpenAIProvider
from handler.providers.tokens import count_tokens
from tests.fakes.openai_server import FakeOpenAI, Reply, ToolCall
from tests.providers.streams import collect, fails, run

KEY = "sk-upstream-secret-123"
USER = [{"role": "user", "content": "Say hello"}]


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def provider(fake: FakeOpenAI, **overrides: Any) -> OpenAIProvider:
    fields: dict[str, Any] = {"provider": "openai", "base_url": fake.base_url, "model": "up-model"}
    fields.update(overrides)
    return OpenAIProvider(OpenAIModel(**fields), secrets=lambda name: KEY)


def text(events: list[Event], index: int = 0) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta) and e.index == index)


def finishes(events: list[Event]) -> dict[int, str]:
    return {e.index: e.reason for e in events if isinstance(e, Finish)}


def assert_clean(exc: BaseException, fake: FakeOpenAI) -> None:
    message = str(exc)
    assert fake.url not in message and "127.0.0.1" not in message
    assert KEY not in message
    assert "Traceback" not in message


# --- streaming and request shape -------------------------------------------------------------------


def test_text_stream_reassembles_with_upstream_usage(fake: FakeOpenAI) -> None:
    fake.enqueue(Reply(chunks=["Hel", "lo there", ",", " world!"], prompt_tokens=21, completion_tokens=5))
    events = run(provider(fake), ModelCall(messages=USER))

    assert text(events) == "Hello there, world!"
    assert len([e for e in events if isinstance(e, TextDelta)]) == 4  # one event per upstream chunk
    assert finishes(events) == {0: "stop"}
    assert events[-1] == UsageReport(prompt_tokens=21, completion_tokens=5)
    assert isinstance(events[-2], Finish)


def test_request_has_only_set_fields_and_always_streams_with_usage(fake: FakeOpenAI) -> None:
    run(provider(fake), ModelCall(messages=USER, system="You are terse."))

    (request,) = fake.requests
    assert request.method == "POST" and request.path == "/v1/chat/completions"
    assert request.json() == {
        "model": "up-model",
        "messages": [{"role": "system", "content": "You are terse."}, *USER],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert "authorization" not in request.headers  # no api_key_param: no key


def test_request_carries_sampling_fields_stop_n_and_tools(fake: FakeOpenAI) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    call = ModelCall(
        messages=USER,
        max_tokens=64,
        temperature=0.2,
        top_p=0.9,
        stop=["\n\n", "END"],
        n=3,
        seed=7,
        presence_penalty=0.5,
        frequency_penalty=-0.5,
        response_format={"type": "json_object"},
        tools=[ToolSpec(name="weather", description="Weather by city", parameters=schema)],
        tool_choice={"type": "function", "function": {"name": "weather"}},
        parallel_tool_calls=False,
    )
    run(provider(fake), call)

    body = fake.bodies[0]
    assert body["max_tokens"] == 64 and body["temperature"] == 0.2 and body["top_p"] == 0.9
    assert body["stop"] == ["\n\n", "END"]
    assert body["n"] == 3 and body["seed"] == 7
    assert body["presence_penalty"] == 0.5 and body["frequency_penalty"] == -0.5
    assert body["response_format"] == {"type": "json_object"}
    assert body["tools"] == [
        {
            "type": "function",
            "function": {"name": "weather", "description": "Weather by city", "parameters": schema},
        }
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "weather"}}
    assert body["parallel_tool_calls"] is False


def test_auth_header_comes_from_the_secrets_callable_with_model_headers(fake: FakeOpenAI) -> None:
    asked: list[str] = []

    def secrets(name: str) -> str:
        asked.append(name)
        return KEY

    model = OpenAIModel(
        provider="openai",
        base_url=fake.base_url,
        model="up-model",
        api_key_param="/gw/secrets/vllm",
        headers={"X-Tenant": "blue"},
    )
    asyncio.run(collect(OpenAIProvider(model, secrets).stream(ModelCall(messages=USER))))

    headers = fake.requests[0].headers
    assert asked == ["/gw/secrets/vllm"]
    assert headers["authorization"] == f"Bearer {KEY}"
    assert headers["x-tenant"] == "blue"


def test_n_choices_stream_per_index(fake: FakeOpenAI) -> None:
    fake.enqueue(Reply(text="one two three", finish_reason="length"))
    p = provider(fake)
    assert p.supports_n is True
    events = run(p, ModelCall(messages=USER, n=2))

    assert text(events, 0) == text(events, 1) == "one two three"
    assert finishes(events) == {0: "length", 1: "length"}
    assert sum(isinstance(e, UsageReport) for e in events) == 1


@pytest.mark.parametrize(
    ("upstream", "expected"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("content_filter", "content_filter"),
        ("tool_calls", "tool_calls"),
        ("function_call", "tool_calls"),
        ("eos", "stop"),
        (None, "stop"),  # never finished by the time of [DONE]
    ],
)
def test_finish_reason_mapping(fake: FakeOpenAI, upstream: str | None, expected: str) -> None:
    fake.enqueue(Reply(text="ok", finish_reason=upstream))
    assert finishes(run(provider(fake), ModelCall(messages=USER))) == {0: expected}


def test_tool_calls_assemble_across_fragments(fake: FakeOpenAI) -> None:
    calls = [
        ToolCall(name="weather", arguments='{"city": "Paris", "unit": "C"}', id="call_a"),
        ToolCall(name="time", arguments='{"tz": "Europe/Paris"}', id="call_b"),
    ]
    fake.enqueue(Reply(text="", tool_calls=calls, fragment=3, finish_reason="tool_calls"))
    events = run(provider(fake), ModelCall(messages=USER, tools=[ToolSpec("weather", "w", {})]))

    done = [e for e in events if isinstance(e, ToolCallsDone)]
    assert len(done) == 1 and done[0].index == 0
    assert [(c.id, c.name, c.arguments) for c in done[0].calls] == [
        ("call_a", "weather", '{"city": "Paris", "unit": "C"}'),
        ("call_b", "time", '{"tz": "Europe/Paris"}'),
    ]
    assert events.index(done[0]) + 1 == events.index(Finish(index=0, reason="tool_calls"))


def test_tool_calls_with_finish_stop_still_end_the_turn_as_tool_calls(fake: FakeOpenAI) -> None:
    # OpenAI answers a forced tool_choice with finish_reason "stop".
    fake.enqueue(Reply(text="", tool_calls=[ToolCall("weather", "{}")], finish_reason="stop"))
    events = run(provider(fake), ModelCall(messages=USER))
    assert any(isinstance(e, ToolCallsDone) for e in events)
    assert finishes(events) == {0: "tool_calls"}


def test_usage_is_estimated_when_upstream_sends_none(fake: FakeOpenAI) -> None:
    fake.enqueue(Reply(text="Hello there, world!", usage=False))
    events = run(provider(fake), ModelCall(messages=USER, system="Be brief."))
    assert events[-1] == UsageReport(
        prompt_tokens=count_tokens("Be brief.") + count_tokens("Say hello"),
        completion_tokens=count_tokens("Hello there, world!"),
        estimated=True,
    )


def test_sse_comments_and_event_lines_are_ignored(fake: FakeOpenAI) -> None:
    fake.enqueue(Reply(text="a b c", comments=True))
    assert text(run(provider(fake), ModelCall(messages=USER))) == "a b c"


def test_connection_is_reused_across_calls(fake: FakeOpenAI) -> None:
    p = provider(fake)

    async def twice() -> None:
        await collect(p.stream(ModelCall(messages=USER)))
        await collect(p.stream(ModelCall(messages=USER)))

    asyncio.run(twice())
    assert len(fake.requests) == 2
    assert fake.connections == 1  # the body is read to its end after [DONE], so keep-alive works
    assert not fake.disconnected.is_set()  # finishing normally is not a disconnect


# --- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503])
def test_retryable_statuses(fake: FakeOpenAI, status: int) -> None:
    fake.enqueue(Reply(status=status, error="Rate limit reached"))
    events, exc = fails(provider(fake, api_key_param="k"), ModelCall(messages=USER))
    assert events == []
    assert isinstance(exc, ProviderError) and exc.retryable and exc.upstream_status == status
    assert_clean(exc, fake)


def test_client_error_is_not_retryable_and_keeps_the_upstream_message_without_secrets(
    fake: FakeOpenAI,
) -> None:
    leak = f"Incorrect API key provided: {KEY}. See {fake.base_url}/docs. " + "x" * 500
    fake.enqueue(Reply(status=400, error=leak))
    _, exc = fails(provider(fake, api_key_param="k"), ModelCall(messages=USER))

    assert isinstance(exc, ProviderError) and not exc.retryable and exc.upstream_status == 400
    assert "Incorrect API key provided" in str(exc)
    assert len(str(exc)) < 400  # the upstream message is cut
    assert_clean(exc, fake)


def test_non_json_error_body_is_reported_by_status(fake: FakeOpenAI) -> None:
    fake.enqueue(Reply(status=404, body=b"<html>nope</html>", content_type="text/html"))
    _, exc = fails(provider(fake), ModelCall(messages=USER))
    assert isinstance(exc, ProviderError) and not exc.retryable and "HTTP 404" in str(exc)


@pytest.mark.parametrize(
    "body",
    [b"<html><body>Bad gateway page</body></html>", b"data: {not json\n\n", b'{"id": "x", "choices": []}'],
)
def test_garbage_200_is_a_malformed_response(fake: FakeOpenAI, body: bytes) -> None:
    fake.enqueue(Reply(body=body))
    _, exc = fails(provider(fake), ModelCall(messages=USER))
    assert isinstance(exc, ProviderError) and not exc.retryable
    assert "malformed upstream response" in str(exc)
    assert_clean(exc, fake)


def test_connection_refused_is_retryable() -> None:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    model = OpenAIModel(provider="openai", base_url=f"http://127.0.0.1:{port}/v1", model="m")
    _, exc = fails(OpenAIProvider(model, lambda n: KEY), ModelCall(messages=USER))
    assert isinstance(exc, ProviderError) and exc.retryable
    assert str(port) not in str(exc)


def test_stalled_upstream_times_out_with_the_model_timeout(fake: FakeOpenAI) -> None:
    fake.enqueue(Reply(stall=True))
    _, exc = fails(provider(fake, timeout_s=0.2), ModelCall(messages=USER))
    assert isinstance(exc, ProviderTimeout) and exc.retryable
    assert_clean(exc, fake)


def test_drop_mid_stream_after_content_is_not_retryable(fake: FakeOpenAI) -> None:
    fake.enqueue(Reply(text="one two three", drop_after=1))
    events, exc = fails(provider(fake), ModelCall(messages=USER))
    assert text(events) == "one"
    assert isinstance(exc, ProviderError) and not exc.retryable
    assert_clean(exc, fake)


def test_drop_before_content_is_retryable(fake: FakeOpenAI) -> None:
    fake.enqueue(Reply(text="one two", drop_after=0))
    events, exc = fails(provider(fake), ModelCall(messages=USER))
    assert events == []
    assert isinstance(exc, ProviderError) and exc.retryable


def test_error_chunk_mid_stream_is_a_provider_error(fake: FakeOpenAI) -> None:
    fake.enqueue(Reply(text="partial", stream_error="CUDA out of memory"))
    events, exc = fails(provider(fake), ModelCall(messages=USER))
    assert text(events) == "partial"
    assert isinstance(exc, ProviderError) and not exc.retryable and "CUDA out of memory" in str(exc)


# --- no buffering, and cancellation reaches the upstream ----------------------------------------------


def test_first_token_arrives_while_upstream_still_holds_the_rest(fake: FakeOpenAI) -> None:
    fake.enqueue(Reply(text="first second third", hold=True))

    async def go() -> list[Event]:
        stream = provider(fake).stream(ModelCall(messages=USER))
        first = await asyncio.wait_for(anext(stream), 5)  # a buffering provider would wait for the gate
        # The fake is blocked at its gate after the first chunk: nothing more has been sent.
        assert first == TextDelta(index=0, text="first")
        assert not fake.gate.is_open() and fake.completed == 0
        fake.release()
        return [first, *[e async for e in stream]]

    events = asyncio.run(go())
    assert text(events) == "first second third" and finishes(events) == {0: "stop"}


def test_closing_the_stream_early_disconnects_the_upstream(fake: FakeOpenAI) -> None:
    fake.enqueue(Reply(text="first second third", hold=True))

    async def go() -> None:
        stream = provider(fake).stream(ModelCall(messages=USER))
        assert isinstance(await asyncio.wait_for(anext(stream), 5), TextDelta)
        await stream.aclose()  # type: ignore[attr-defined]

    asyncio.run(go())
    assert fake.disconnected.wait(5)
    assert fake.completed == 0


def test_cancelling_a_waiting_call_disconnects_the_upstream(fake: FakeOpenAI) -> None:
    fake.enqueue(Reply(stall=True))

    async def go() -> None:
        task = asyncio.create_task(collect(provider(fake).stream(ModelCall(messages=USER))))
        assert await asyncio.to_thread(fake.request_received.wait, 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())
    assert fake.disconnected.wait(5)
