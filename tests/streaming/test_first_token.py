"""The first token reaches the client while the model has not produced its second one yet.

Decided by the upstream's own signal, not by timing: the fake upstreams hold their stream at a gate
right after the first content chunk, and the test reads that token from the gateway while the gate
is still shut. The record is written only once the stream has ended (never on the way).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.fakes.bedrock_server import BedrockReply, FakeBedrock
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.streaming.conftest import CHAT, Gateway, chat, data_lines, project, records


def first_then_rest(gateway: Gateway, body: dict[str, Any], held: threading.Event, release: Any) -> list[Any]:
    """Read the first chunk while the upstream is held (`held` set, gate shut), then release it."""
    with gateway.client() as client, client.stream("POST", CHAT, json=body) as response:
        assert response.status_code == 200
        events = data_lines(response.iter_lines())
        first = next(events)
        assert held.is_set(), "the upstream said it sent its first token"
        assert first["choices"][0]["delta"]["content"] == "Hello"
        assert gateway.saves.statuses == []  # nothing stored on the way
        release()
        rest = list(events)
    assert rest[-1] == "[DONE]"
    return [first, *rest]


def test_openai_first_token_while_upstream_is_held(gateway: Gateway, openai_fake: FakeOpenAI) -> None:
    project("oa", {"m": {"provider": "openai", "base_url": openai_fake.base_url, "model": "up"}})
    openai_fake.enqueue(Reply(text="Hello from upstream", hold=True))

    def release() -> None:
        assert openai_fake.completed == 0 and not openai_fake.gate.is_open()
        openai_fake.release()

    events = first_then_rest(gateway, chat("oa"), openai_fake.first_token_sent, release)
    text = "".join(e["choices"][0]["delta"]["content"] for e in events[:-1])
    assert text == "Hello from upstream"
    assert gateway.saves.wait(1) == ["completed"]
    (record,) = records()
    assert record["content"] == "Hello from upstream" and record["provider"] == "openai"
    assert record["usage"]["completion_tokens"] > 0  # the gateway asked the upstream for usage
    assert openai_fake.bodies[0]["stream_options"] == {"include_usage": True}


def test_bedrock_first_token_while_upstream_is_held(gateway: Gateway, bedrock_fake: FakeBedrock) -> None:
    project("br", {"m": {"provider": "bedrock", "model_id": "anthropic.fake-v1:0"}})
    bedrock_fake.enqueue(BedrockReply(text="Hello from Bedrock", hold=True, input_tokens=7, output_tokens=3))

    def release() -> None:
        assert bedrock_fake.completed == 0 and not bedrock_fake.gate.is_open()
        bedrock_fake.release()

    events = first_then_rest(
        gateway, chat("br", stream_options={"include_usage": True}), bedrock_fake.first_token_sent, release
    )
    text = "".join(e["choices"][0]["delta"]["content"] for e in events[:-2])
    assert text == "Hello from Bedrock"
    assert events[-2]["usage"] == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    assert bedrock_fake.model_ids == ["anthropic.fake-v1:0"]
    assert gateway.saves.wait(1) == ["completed"]
    (record,) = records()
    assert record["content"] == "Hello from Bedrock" and record["usage"]["total_tokens"] == 10


def test_echo_first_token_before_the_second_is_produced(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Echo has no gate of its own: it is paced (one token per 0.4 s). The test watches what echo
    yields, and the first chunk must reach the client before echo has produced its second token."""
    from handler.providers import base
    from handler.providers.echo import EchoProvider

    produced: list[str] = []
    second = threading.Event()
    original = EchoProvider.stream

    async def watched(self: EchoProvider, call: base.ModelCall) -> AsyncIterator[base.Event]:
        async for event in original(self, call):
            if isinstance(event, base.TextDelta):
                produced.append(event.text)
                if len(produced) == 2:
                    second.set()
            yield event

    monkeypatch.setattr(EchoProvider, "stream", watched)
    project("paced", {"slow": {"provider": "echo", "tokens_per_second": 2.5}})
    with gateway.client() as client, client.stream("POST", CHAT, json=chat("paced", "Hello paced")) as r:
        events = data_lines(r.iter_lines())
        first = next(events)
        assert first["choices"][0]["delta"]["content"] == "Hello"
        assert not second.is_set(), "the first token was held back until the second existed"
        assert produced == ["Hello"]
        rest = list(events)
    assert "".join(e["choices"][0]["delta"]["content"] for e in [first, *rest[:-1]]) == "Hello paced"
