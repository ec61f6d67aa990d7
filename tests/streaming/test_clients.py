"""`openai` and `adaptive-sdk`, unpatched, parse every chunk of a stream: with and without
`include_usage`, with n = 1 and n = 3 (each combination in one server's lifetime, to stay fast)."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import openai
from adaptive_sdk import Adaptive  # type: ignore[import-untyped]
from adaptive_sdk.rest import rest_types  # type: ignore[import-untyped]

from tests.conftest import DEV_KEY
from tests.streaming.conftest import Gateway

TEXT = "Streams parse in both clients"
TOKENS = 5  # "Streams", " parse", " in", " both", " clients"
COMBINATIONS = list(itertools.product([1, 3], [False, True]))


def test_openai_sdk_parses_every_chunk(gateway: Gateway) -> None:
    client = openai.OpenAI(base_url=f"{gateway.url}/api/v1", api_key=DEV_KEY, max_retries=0)
    for n, include_usage in COMBINATIONS:
        extra: dict[str, Any] = {"stream_options": {"include_usage": True}} if include_usage else {}
        stream = client.chat.completions.create(
            model="demo", messages=[{"role": "user", "content": TEXT}], stream=True, n=n, **extra
        )
        texts = {i: "" for i in range(n)}
        finishes: dict[int, str | None] = {}
        usage = []
        for chunk in stream:
            assert chunk.object == "chat.completion.chunk" and chunk.model == "demo/echo"
            if chunk.usage is not None:
                assert chunk.choices == []
                usage.append(chunk.usage)
                continue
            for choice in chunk.choices:
                assert choice.delta.role == "assistant" and isinstance(choice.delta.content, str)
                texts[choice.index] += choice.delta.content
                if choice.finish_reason:
                    finishes[choice.index] = choice.finish_reason
        assert texts == {i: TEXT for i in range(n)}, (n, include_usage)
        assert finishes == {i: "stop" for i in range(n)}, (n, include_usage)
        if include_usage:
            (only,) = usage
            assert only.completion_tokens == n * TOKENS and only.total_tokens > only.completion_tokens
        else:
            assert usage == []


class _ChatInputN(rest_types.ChatInput):  # type: ignore[misc]
    """adaptive-sdk's `chat.create()` has no `n`; its own stream parser is driven with one."""

    n: int | None = None


def test_adaptive_sdk_parses_every_chunk(gateway: Gateway) -> None:
    client = Adaptive(base_url=gateway.url, api_key=DEV_KEY)
    client.set_default_project("demo")
    session = uuid.uuid4()
    for n, include_usage in COMBINATIONS:
        messages = [{"role": "user", "content": TEXT}]
        if n == 1:
            chunks = list(
                client.chat.create(
                    messages=messages,
                    stream=True,
                    stream_include_usage=include_usage,
                    session_id=session,
                )
            )
        else:
            body = _ChatInputN(
                messages=messages,
                model="demo",
                stream=True,
                stream_options=rest_types.StreamOptions(include_usage=include_usage),
                session_id=session,
                n=n,
            )
            chunks = list(client.chat._stream(body))
        assert all(isinstance(c, rest_types.ChatResponseChunk) for c in chunks)
        assert {c.session_id for c in chunks} == {session}
        texts = {i: "" for i in range(n)}
        ids: dict[int, set[str]] = {i: set() for i in range(n)}
        usage = [c.usage for c in chunks if c.usage is not None]
        for chunk in chunks:
            for choice in chunk.choices:
                texts[choice.index] += choice.delta.content
                ids[choice.index].add(choice.completion_id)
                assert choice.delta.id == choice.completion_id
        assert texts == {i: TEXT for i in range(n)}, (n, include_usage)
        assert all(len(v) == 1 for v in ids.values()) and len(set().union(*ids.values())) == n
        last = [next(c for c in reversed(chunks) if any(ch.index == i for ch in c.choices)) for i in range(n)]
        assert all(ch.finish_reason == "stop" for c in last for ch in c.choices)
        if include_usage:
            (only,) = usage
            assert only.completion_tokens == n * TOKENS
            assert chunks[-1].choices == []
        else:
            assert usage == []
