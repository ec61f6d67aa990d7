"""OpenAI-compatible upstreams: reasoning deltas and cached-token usage pass through unchanged."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from handler.config.models import OpenAIModel
from handler.providers.base import ModelCall, ReasoningDelta, TextDelta, UsageReport
from handler.providers.openai_compat import OpenAIProvider
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.providers.streams import run

USER = [{"role": "user", "content": "Why?"}]


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def provider(fake: FakeOpenAI) -> OpenAIProvider:
    return OpenAIProvider(OpenAIModel(provider="openai", base_url=fake.base_url, model="m"), lambda name: "")


@pytest.mark.parametrize("key", ["reasoning_content", "reasoning"])
def test_reasoning_deltas_keep_their_key_and_come_before_the_text(fake: FakeOpenAI, key: str) -> None:
    fake.enqueue(Reply(reasoning="Because of physics.", reasoning_key=key, text="Gravity."))
    events = run(provider(fake), ModelCall(messages=USER))
    reasoning = [e for e in events if isinstance(e, ReasoningDelta)]
    assert "".join(e.text for e in reasoning) == "Because of physics."
    assert {e.key for e in reasoning} == {key}
    assert events.index(reasoning[-1]) < next(i for i, e in enumerate(events) if isinstance(e, TextDelta))


def test_cached_tokens_and_reasoning_effort(fake: FakeOpenAI) -> None:
    fake.enqueue(Reply(text="Hi", prompt_tokens=100, completion_tokens=1, cached_tokens=64))
    events = run(provider(fake), ModelCall(messages=USER, reasoning_effort="low"))
    assert events[-1] == UsageReport(prompt_tokens=100, completion_tokens=1, cached_tokens=64)
    assert fake.bodies[-1]["reasoning_effort"] == "low"


def test_reasoning_sent_back_with_an_assistant_turn_is_not_forwarded(fake: FakeOpenAI) -> None:
    """DeepSeek refuses `reasoning_content` in input messages; `thinking_blocks` are Bedrock's."""
    assistant = {
        "role": "assistant",
        "content": "Gravity.",
        "reasoning_content": "physics",
        "thinking_blocks": [{"type": "thinking", "thinking": "physics", "signature": "s"}],
    }
    run(provider(fake), ModelCall(messages=[*USER, assistant, {"role": "user", "content": "More?"}]))
    assert fake.bodies[-1]["messages"][1] == {"role": "assistant", "content": "Gravity."}
