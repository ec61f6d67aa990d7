"""Reasoning and prompt-cache usage as clients see them, through the real app under uvicorn, from
both provider kinds (fake Bedrock, fake OpenAI-compatible upstream), streamed and not.

The openai SDK keeps fields it does not model in `model_extra`; langchain's DeepSeek chat model
(the OpenAI-compatible class that reads `reasoning_content`) puts it in `additional_kwargs`, and
reads `prompt_tokens_details.cached_tokens` into `usage_metadata`. langchain's plain `ChatOpenAI`
drops `reasoning_content` by design (it targets OpenAI's own API only).
"""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.conftest import DEV_KEY
from tests.fakes.bedrock_server import BedrockReply, FakeBedrock, ToolUse
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.streaming.conftest import Gateway, project, records

THINK = "Paris is in France, so the answer is Paris."
ANSWER = "The capital is Paris."


def _projects(openai_fake: FakeOpenAI) -> None:
    project(
        "reason",
        {
            "claude": {
                "provider": "bedrock",
                "model_id": "us.anthropic.claude-3-7-sonnet-20250219-v1:0",
                "thinking": {"budget_tokens": 1024},
                "cache_points": ["system"],
            },
            "vllm": {"provider": "openai", "base_url": openai_fake.base_url, "model": "qwen3"},
            "plain": {"provider": "bedrock", "model_id": "anthropic.claude-3-haiku-20240307-v1:0"},
        },
        system_prompt={"template": "You answer geography questions."},
    )


def _sdk(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/api/v1", api_key=DEV_KEY, max_retries=0)


def _enqueue(model: str, bedrock_fake: FakeBedrock, openai_fake: FakeOpenAI) -> None:
    if model == "claude":
        bedrock_fake.enqueue(BedrockReply(reasoning=THINK, text=ANSWER, input_tokens=5, cache_read=900))
    else:
        openai_fake.enqueue(Reply(reasoning=THINK, text=ANSWER, prompt_tokens=905, cached_tokens=900))


MESSAGES: list[Any] = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.mark.parametrize("model", ["claude", "vllm"])
def test_openai_sdk_sees_reasoning_and_cached_tokens(
    gateway: Gateway, bedrock_fake: FakeBedrock, openai_fake: FakeOpenAI, model: str
) -> None:
    _projects(openai_fake)
    client = _sdk(gateway)

    _enqueue(model, bedrock_fake, openai_fake)
    completion = client.chat.completions.create(model=f"reason/{model}", messages=MESSAGES)
    message = completion.choices[0].message
    assert message.content == ANSWER
    assert (message.model_extra or {})["reasoning_content"] == THINK
    assert completion.usage is not None and completion.usage.prompt_tokens == 905
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 900

    _enqueue(model, bedrock_fake, openai_fake)
    stream = client.chat.completions.create(
        model=f"reason/{model}", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    reasoning = content = ""
    usage = None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            reasoning += (choice.delta.model_extra or {}).get("reasoning_content") or ""
            content += choice.delta.content or ""
    assert (reasoning, content) == (THINK, ANSWER)
    assert usage is not None and usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 900

    gateway.saves.wait(2)
    stored = records()
    assert [r["reasoning_content"] for r in stored] == [THINK, THINK]
    assert [r["usage"]["cached_tokens"] for r in stored] == [900, 900]
    assert [r["usage_estimated"] for r in stored] == [False, False]
    assert bedrock_fake.violations == []


def test_bodies_without_reasoning_or_cache_stay_as_they_were(
    gateway: Gateway, bedrock_fake: FakeBedrock, openai_fake: FakeOpenAI
) -> None:
    """No `reasoning_content`, `thinking_blocks` or `prompt_tokens_details` keys when there is none."""
    _projects(openai_fake)
    bedrock_fake.enqueue(BedrockReply(text=ANSWER), BedrockReply(text=ANSWER))
    with gateway.client() as http:
        body = http.post(
            "/api/v1/chat/completions", json={"model": "reason/plain", "messages": MESSAGES, "store": False}
        ).json()
        assert set(body["choices"][0]["message"]) == {"id", "role", "content"}
        assert set(body["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}
        streamed = http.post(
            "/api/v1/chat/completions",
            json={
                "model": "reason/plain",
                "messages": MESSAGES,
                "stream": True,
                "stream_options": {"include_usage": True},
                "store": False,
            },
        ).text
    assert (
        "reasoning" not in streamed and "prompt_tokens_details" not in streamed and "thinking" not in streamed
    )


def test_bedrock_usage_is_estimated_when_the_stream_has_none(
    gateway: Gateway, bedrock_fake: FakeBedrock, openai_fake: FakeOpenAI
) -> None:
    _projects(openai_fake)
    bedrock_fake.enqueue(BedrockReply(text=ANSWER, usage=False))
    completion = _sdk(gateway).chat.completions.create(model="reason/plain", messages=MESSAGES)
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    gateway.saves.wait(1)
    (stored,) = records()
    assert stored["usage_estimated"] is True


def test_two_turn_tool_conversation_with_thinking_through_the_sdk(
    gateway: Gateway, bedrock_fake: FakeBedrock, openai_fake: FakeOpenAI
) -> None:
    """The client sends back the assistant turn as the gateway returned it (`thinking_blocks`
    included); Bedrock (the fake) verifies the signature and the block order."""
    _projects(openai_fake)
    bedrock_fake.enqueue(
        BedrockReply(
            reasoning="I need the weather tool.",
            text="",
            tool_uses=[ToolUse(name="get_weather", input='{"city": "Paris"}', id="tooluse_a")],
            stop_reason="tool_use",
        ),
        BedrockReply(reasoning="Sunny, then.", text="Sunny in Paris."),
    )
    tools: list[Any] = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather in a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    client = _sdk(gateway)
    stream = client.chat.completions.create(
        model="reason/claude", messages=MESSAGES, tools=tools, stream=True
    )
    blocks: list[Any] = []
    reasoning = ""
    calls: list[Any] = []
    for chunk in stream:
        for choice in chunk.choices:
            extra = choice.delta.model_extra or {}
            reasoning += extra.get("reasoning_content") or ""
            blocks += extra.get("thinking_blocks") or []
            calls += choice.delta.tool_calls or []
    assert reasoning == "I need the weather tool." and len(blocks) == 1 and blocks[0]["signature"]
    assistant: Any = {
        "role": "assistant",
        "content": None,
        "tool_calls": [c.model_dump(exclude={"index"}) for c in calls],
        "thinking_blocks": blocks,
    }
    follow_up = [*MESSAGES, assistant, {"role": "tool", "tool_call_id": "tooluse_a", "content": "sunny"}]
    answer = client.chat.completions.create(model="reason/claude", messages=follow_up, tools=tools)
    assert answer.choices[0].message.content == "Sunny in Paris."
    assert bedrock_fake.violations == []
    turn = bedrock_fake.bodies[-1]["messages"][1]["content"]
    assert turn[0]["reasoningContent"]["reasoningText"]["signature"] == blocks[0]["signature"]
    assert "thinking" in bedrock_fake.bodies[-1]["additionalModelRequestFields"]


def test_reasoning_effort_is_a_400_where_the_model_has_no_thinking(
    gateway: Gateway, openai_fake: FakeOpenAI
) -> None:
    _projects(openai_fake)
    with pytest.raises(openai.BadRequestError, match="reasoning_effort"):
        _sdk(gateway).chat.completions.create(
            model="reason/plain", messages=MESSAGES, reasoning_effort="high"
        )


def test_reasoning_effort_is_forwarded_to_openai_compatible_upstreams(
    gateway: Gateway, openai_fake: FakeOpenAI
) -> None:
    _projects(openai_fake)
    openai_fake.enqueue(Reply(text=ANSWER))
    _sdk(gateway).chat.completions.create(
        model="reason/vllm",
        messages=MESSAGES,
        reasoning_effort="low",
        response_format={"type": "json_object"},
        extra_body={"store": False},
    )
    sent = openai_fake.bodies[-1]
    assert sent["reasoning_effort"] == "low" and sent["response_format"] == {"type": "json_object"}


@pytest.mark.parametrize("model", ["claude", "vllm"])
def test_langchain_sees_reasoning_and_cached_tokens(
    gateway: Gateway, bedrock_fake: FakeBedrock, openai_fake: FakeOpenAI, model: str
) -> None:
    langchain_deepseek = pytest.importorskip("langchain_deepseek")
    _projects(openai_fake)
    chat = langchain_deepseek.ChatDeepSeek(
        model=f"reason/{model}", api_key=DEV_KEY, api_base=f"{gateway.url}/api/v1", max_retries=0
    )
    _enqueue(model, bedrock_fake, openai_fake)
    message = chat.invoke("What is the capital of France?")
    assert message.content == ANSWER
    assert message.additional_kwargs["reasoning_content"] == THINK
    assert message.usage_metadata is not None
    assert message.usage_metadata["input_token_details"]["cache_read"] == 900

    _enqueue(model, bedrock_fake, openai_fake)
    chat = langchain_deepseek.ChatDeepSeek(
        model=f"reason/{model}",
        api_key=DEV_KEY,
        api_base=f"{gateway.url}/api/v1",
        max_retries=0,
        stream_usage=True,
    )
    total: Any = None
    for piece in chat.stream("What is the capital of France?"):
        total = piece if total is None else total + piece
    assert total.content == ANSWER
    assert total.additional_kwargs["reasoning_content"] == THINK
    assert total.usage_metadata["input_token_details"]["cache_read"] == 900
