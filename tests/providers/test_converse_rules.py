"""The Bedrock provider against a fake that refuses what Bedrock refuses (tests/fakes/converse_rules.py).

Each test names the documented rule it holds: the Converse API reference (Message, ContentBlock,
ReasoningContentBlock / ReasoningTextBlock, CachePointBlock, ToolResultBlock, ToolSpecification,
InferenceConfiguration, ConverseStream's event shapes) or Anthropic's extended-thinking rules.
Real boto3 and botocore serialise each request and parse each event stream.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from handler import aws
from handler.config.models import BedrockModel
from handler.errors import InvalidRequest
from handler.providers.base import (
    Finish,
    ModelCall,
    ProviderError,
    ReasoningDelta,
    ReasoningDone,
    TextDelta,
    ToolCallsDone,
    ToolSpec,
    UsageReport,
)
from handler.providers.bedrock import BedrockProvider
from tests.fakes.bedrock_server import BedrockReply, FakeBedrock, ToolUse
from tests.providers.streams import run

MODEL_ID = "anthropic.claude-3-7-sonnet-20250219-v1:0"
USER = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER = ToolSpec(
    name="get_weather",
    description="The weather in a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeBedrock]:
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
def fake(server: FakeBedrock) -> Iterator[FakeBedrock]:
    server.reset()
    server.default = BedrockReply()
    yield server
    assert server.violations == [], "the provider sent a request Bedrock refuses"


def provider(model_id: str = MODEL_ID, **options: Any) -> BedrockProvider:
    return BedrockProvider(BedrockModel(provider="bedrock", model_id=model_id, **options))


def sent(fake: FakeBedrock, index: int = -1) -> dict[str, Any]:
    body: dict[str, Any] = fake.bodies[index]
    return body


THINKING = {"thinking": {"budget_tokens": 2048}}


# --- reasoning -------------------------------------------------------------------------------------


def test_reasoning_deltas_and_signed_block_come_before_the_text(fake: FakeBedrock) -> None:
    """ConverseStream: `contentBlockDelta.delta.reasoningContent` carries text, then `signature`."""
    fake.enqueue(BedrockReply(reasoning="Paris is in France.", text="It is sunny."))
    events = run(provider(**THINKING), ModelCall(messages=USER, max_tokens=500))
    reasoning = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    assert reasoning == "Paris is in France."
    (done,) = [e for e in events if isinstance(e, ReasoningDone)]
    assert done.block == {
        "type": "thinking",
        "thinking": "Paris is in France.",
        "signature": fake.sign("Paris is in France."),
    }
    first_text = next(i for i, e in enumerate(events) if isinstance(e, TextDelta))
    assert events.index(done) < first_text
    # Extended thinking: the budget on top of the answer's max_tokens; temperature left out.
    body = sent(fake)
    assert body["additionalModelRequestFields"]["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert body["inferenceConfig"]["maxTokens"] == 2548


def test_redacted_reasoning_comes_back_as_a_redacted_block(fake: FakeBedrock) -> None:
    """ReasoningContentBlock: `redactedContent` is encrypted bytes (base64 on the wire)."""
    fake.enqueue(BedrockReply(redacted=b"\x00secret\xff", text="Done."))
    events = run(provider(**THINKING), ModelCall(messages=USER, max_tokens=500))
    (done,) = [e for e in events if isinstance(e, ReasoningDone)]
    assert done.block == {"type": "redacted_thinking", "data": base64.b64encode(b"\x00secret\xff").decode()}


def test_two_turn_tool_conversation_with_thinking_round_trips_the_signature(fake: FakeBedrock) -> None:
    """ReasoningTextBlock.signature: "include the text and its signature unmodified"; Anthropic:
    the final assistant message of a tool loop must start with its thinking block."""
    fake.enqueue(
        BedrockReply(
            reasoning="I should call the weather tool.",
            text="",
            tool_uses=[ToolUse(name="get_weather", input='{"city": "Paris"}', id="tooluse_1")],
            stop_reason="tool_use",
        ),
        BedrockReply(reasoning="The tool said sunny.", text="It is sunny in Paris."),
    )
    p = provider(**THINKING)
    first = run(p, ModelCall(messages=USER, tools=[WEATHER], tool_choice="auto", max_tokens=500))
    (calls,) = [e for e in first if isinstance(e, ToolCallsDone)]
    blocks = [e.block for e in first if isinstance(e, ReasoningDone)]
    assistant = {
        "role": "assistant",
        "content": None,
        "reasoning_content": "I should call the weather tool.",
        "thinking_blocks": blocks,
        "tool_calls": [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in calls.calls
        ],
    }
    result = {"role": "tool", "tool_call_id": "tooluse_1", "content": '{"sky": "sunny"}'}
    second = run(p, ModelCall(messages=[*USER, assistant, result], tools=[WEATHER], max_tokens=500))
    assert "".join(e.text for e in second if isinstance(e, TextDelta)) == "It is sunny in Paris."
    turn = sent(fake)["messages"][1]
    assert [next(iter(b)) for b in turn["content"]] == ["reasoningContent", "toolUse"]
    assert turn["content"][0]["reasoningContent"]["reasoningText"] == {
        "text": "I should call the weather tool.",
        "signature": fake.sign("I should call the weather tool."),
    }
    assert "thinking" in sent(fake)["additionalModelRequestFields"]


def test_a_changed_signature_is_refused_by_the_fake(server: FakeBedrock) -> None:
    """The fake verifies signatures, so the round-trip test above can fail."""
    server.reset()
    assistant = {
        "role": "assistant",
        "content": "Let me look.",
        "thinking_blocks": [{"type": "thinking", "thinking": "tampered", "signature": "sig-forged"}],
    }
    messages = [*USER, assistant, {"role": "user", "content": "And?"}]
    with pytest.raises(ProviderError, match="signature does not verify"):
        run(provider(**THINKING), ModelCall(messages=messages, max_tokens=500))
    server.reset()


def test_thinking_off_when_the_tool_turn_came_back_without_its_reasoning(fake: FakeBedrock) -> None:
    """Anthropic refuses a thinking request whose last tool turn lacks its thinking block: a client
    that drops `thinking_blocks` gets an answer without thinking rather than a 502."""
    assistant = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "t1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
        ],
    }
    messages = [*USER, assistant, {"role": "tool", "tool_call_id": "t1", "content": "sunny"}]
    run(provider(**THINKING), ModelCall(messages=messages, tools=[WEATHER], max_tokens=500))
    assert "additionalModelRequestFields" not in sent(fake)


def test_reasoning_effort_picks_the_budget_and_none_turns_it_off(fake: FakeBedrock) -> None:
    p = provider(thinking={"effort_budgets": {"none": 0, "low": 1024, "high": 4096}})
    run(p, ModelCall(messages=USER, max_tokens=1000, temperature=0.2, reasoning_effort="high"))
    body = sent(fake)
    assert body["additionalModelRequestFields"]["thinking"]["budget_tokens"] == 4096
    assert "temperature" not in body["inferenceConfig"]  # thinking: no temperature change
    run(p, ModelCall(messages=USER, max_tokens=1000, temperature=0.2, reasoning_effort="none"))
    assert "additionalModelRequestFields" not in sent(fake)
    assert sent(fake)["inferenceConfig"]["temperature"] == pytest.approx(0.2)
    run(p, ModelCall(messages=USER, max_tokens=1000))  # no effort, no default budget: off
    assert "additionalModelRequestFields" not in sent(fake)


def test_thinking_budget_stays_within_the_models_maximum(fake: FakeBedrock) -> None:
    """Anthropic: budget_tokens below max_tokens; the model's own maximum caps both."""
    run(
        provider(thinking={"budget_tokens": 4096}, max_output_tokens=3000),
        ModelCall(messages=USER, max_tokens=2000),
    )
    body = sent(fake)
    assert body["inferenceConfig"]["maxTokens"] == 3000
    assert body["additionalModelRequestFields"]["thinking"]["budget_tokens"] == 2999


def test_forced_tool_choice_turns_thinking_off(fake: FakeBedrock) -> None:
    """Anthropic: thinking allows tool_choice auto or none only."""
    fake.enqueue(
        BedrockReply(text="", tool_uses=[ToolUse(name="get_weather", input="{}")], stop_reason="tool_use")
    )
    run(
        provider(**THINKING),
        ModelCall(messages=USER, tools=[WEATHER], tool_choice="required", max_tokens=500),
    )
    assert "additionalModelRequestFields" not in sent(fake)


# --- prompt caching -------------------------------------------------------------------------------


def test_cache_points_follow_the_system_prompt_tools_and_conversation(fake: FakeBedrock) -> None:
    """CachePointBlock: placed after the content it caches."""
    p = provider(cache_points=["system", "tools", "messages"])
    run(p, ModelCall(messages=USER, system="You are terse.", tools=[WEATHER], tool_choice="auto"))
    body = sent(fake)
    assert body["system"] == [{"text": "You are terse."}, {"cachePoint": {"type": "default"}}]
    assert body["toolConfig"]["tools"][-1] == {"cachePoint": {"type": "default"}}
    assert body["messages"][-1]["content"][-1] == {"cachePoint": {"type": "default"}}


def test_cache_reads_and_writes_are_reported(fake: FakeBedrock) -> None:
    """ConverseStream metadata: `usage.cacheReadInputTokens` / `cacheWriteInputTokens`, which
    `inputTokens` leaves out; OpenAI's `prompt_tokens` counts them."""
    fake.enqueue(BedrockReply(text="Hi", input_tokens=10, output_tokens=2, cache_read=1000, cache_write=50))
    events = run(provider(cache_points=["system"]), ModelCall(messages=USER, system="Long prompt"))
    assert events[-1] == UsageReport(
        prompt_tokens=1060, completion_tokens=2, cached_tokens=1000, cache_write_tokens=50
    )


# --- messages --------------------------------------------------------------------------------------


def test_consecutive_turns_are_merged_and_blank_text_dropped(fake: FakeBedrock) -> None:
    """Converse: roles alternate; ContentBlock: a text field must not be blank."""
    messages = [
        {"role": "user", "content": "First"},
        {"role": "user", "content": [{"type": "text", "text": "  "}, {"type": "text", "text": "Second"}]},
        {"role": "assistant", "content": " \n"},
        {"role": "user", "content": "Third"},
        {"role": "assistant", "content": "Prefill: "},
    ]
    run(provider(), ModelCall(messages=messages))
    assert sent(fake)["messages"] == [
        {"role": "user", "content": [{"text": "First"}, {"text": "Second"}, {"text": "Third"}]},
        {"role": "assistant", "content": [{"text": "Prefill:"}]},  # no trailing whitespace
    ]


def test_a_tool_result_without_its_tool_call_is_a_400() -> None:
    """ToolResultBlock: answers a toolUse of the assistant turn before it."""
    messages = [
        *USER,
        {"role": "assistant", "content": "Hi"},
        {"role": "tool", "tool_call_id": "x", "content": "1"},
    ]
    with pytest.raises(InvalidRequest, match="tool_call_id 'x'") as info:
        provider().request(ModelCall(messages=messages, tools=[WEATHER]))
    assert info.value.param == "messages"


def test_tool_results_go_first_in_their_user_turn_and_history_keeps_a_tool_config(fake: FakeBedrock) -> None:
    """Converse: toolUse / toolResult blocks need a toolConfig, even when this request has no tools."""
    messages = [
        *USER,
        {
            "role": "assistant",
            "content": "Looking",
            "tool_calls": [
                {"id": "t1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "t1", "content": ""},
        {"role": "user", "content": "Thanks"},
    ]
    run(provider(), ModelCall(messages=messages))
    body = sent(fake)
    assert [next(iter(b)) for b in body["messages"][2]["content"]] == ["toolResult", "text"]
    assert body["messages"][2]["content"][0]["toolResult"]["content"] == [{"text": "(no output)"}]
    assert [t["toolSpec"]["name"] for t in body["toolConfig"]["tools"]] == ["lookup"]


def test_images_only_from_data_urls_in_user_turns_within_bedrock_limits() -> None:
    """Message: up to 20 images of at most 3.75 MB, only in user messages."""
    url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    image = {"type": "image_url", "image_url": {"url": url}}
    body = provider().request(ModelCall(messages=[{"role": "user", "content": [image]}]))
    assert body["messages"][0]["content"] == [{"image": {"format": "png", "source": {"bytes": PNG}}}]
    cases = [
        ([{"role": "user", "content": [image] * 21}], "at most 20 images"),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}]}],
            "data: URLs",
        ),
        ([*USER, {"role": "assistant", "content": [image]}], "only in user messages"),
    ]
    big = "data:image/jpeg;base64," + base64.b64encode(b"\xff" * 3_932_161).decode()
    cases.append(
        ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": big}}]}], "3.75 MB")
    )
    for messages, message in cases:
        with pytest.raises(InvalidRequest, match=message):
            provider().request(ModelCall(messages=messages))


# --- inference configuration -----------------------------------------------------------------------


def test_exclusive_sampling_keeps_temperature_and_drops_top_p(fake: FakeBedrock) -> None:
    """Anthropic (Claude 4.5 on Bedrock): temperature and top_p cannot both be specified."""
    newer = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    call = ModelCall(messages=USER, temperature=0.3, top_p=0.9)
    with pytest.raises(ProviderError, match="cannot both be specified"):
        run(provider(newer), call)
    fake.violations.clear()  # the refusal above is the point: the fake holds the rule
    run(provider(newer, exclusive_sampling=True), call)
    assert sent(fake)["inferenceConfig"] == {"temperature": pytest.approx(0.3)}


def test_inference_config_within_bedrock_ranges(fake: FakeBedrock) -> None:
    """InferenceConfiguration: maxTokens >= 1, temperature 0..1, stop sequences of >= 1 character."""
    run(provider(max_output_tokens=1000), ModelCall(messages=USER, max_tokens=4096, stop=["", "END"]))
    assert sent(fake)["inferenceConfig"] == {"maxTokens": 1000, "stopSequences": ["END"]}
    with pytest.raises(InvalidRequest) as info:
        provider().request(ModelCall(messages=USER, temperature=1.5))
    assert info.value.param == "temperature"
    with pytest.raises(InvalidRequest) as info:
        provider().request(ModelCall(messages=USER, max_tokens=0))
    assert info.value.param == "max_tokens"


# --- structured output ------------------------------------------------------------------------------


def test_json_schema_response_format_is_a_forced_tool_whose_input_is_the_content(fake: FakeBedrock) -> None:
    """SpecificToolChoice forces the tool; its streamed input (contentBlockStart toolUse, then
    toolUse input deltas) is the answer's text, and the turn ends with `stop`."""
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    fake.enqueue(
        BedrockReply(
            text="", tool_uses=[ToolUse(name="city", input='{"city": "Paris"}')], stop_reason="tool_use"
        )
    )
    response_format = {"type": "json_schema", "json_schema": {"name": "city", "schema": schema}}
    events = run(
        provider(**THINKING), ModelCall(messages=USER, response_format=response_format, max_tokens=300)
    )
    assert orjson.loads("".join(e.text for e in events if isinstance(e, TextDelta))) == {"city": "Paris"}
    assert [e for e in events if isinstance(e, ToolCallsDone)] == []
    assert [e.reason for e in events if isinstance(e, Finish)] == ["stop"]
    body = sent(fake)
    assert body["toolConfig"]["toolChoice"] == {"tool": {"name": "city"}}
    assert body["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"] == schema
    assert "additionalModelRequestFields" not in body  # a forced tool turns thinking off


def test_json_object_response_format(fake: FakeBedrock) -> None:
    fake.enqueue(BedrockReply(text="", tool_uses=[ToolUse(name="json_response", input='{"a": 1}')]))
    events = run(provider(), ModelCall(messages=USER, response_format={"type": "json_object"}))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == '{"a": 1}'
    assert sent(fake)["toolConfig"]["toolChoice"] == {"tool": {"name": "json_response"}}


# --- inference profiles ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model_id",
    [
        "us.anthropic.claude-3-7-sonnet-20250219-v1:0",
        "eu.anthropic.claude-3-7-sonnet-20250219-v1:0",
        "apac.anthropic.claude-3-7-sonnet-20250219-v1:0",
        "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6",
    ],
)
def test_inference_profile_ids_reach_bedrock_unchanged(fake: FakeBedrock, model_id: str) -> None:
    fake.enqueue(BedrockReply(text="Hi"))
    events = run(provider(model_id), ModelCall(messages=USER))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hi"
    assert fake.model_ids == [model_id]


def test_application_profile_arn_picks_its_region() -> None:
    from handler.providers.bedrock import _arn_region

    assert (
        _arn_region("arn:aws:bedrock:eu-west-1:123456789012:application-inference-profile/x") == "eu-west-1"
    )
    assert _arn_region("eu.anthropic.claude-3-7-sonnet-20250219-v1:0") is None


# --- the server-side tool loop ------------------------------------------------------------------------


def test_the_server_side_tool_loop_keeps_the_reasoning_blocks_between_rounds(fake: FakeBedrock) -> None:
    """Anthropic: the tool loop's last assistant turn starts with its thinking block, signed."""
    import asyncio

    from handler.completions.tools import ToolLoop
    from handler.config.models import ToolConfig
    from tests.tools.test_loop_unit import FakeRunner

    fake.enqueue(
        BedrockReply(
            reasoning="Ask the tool.",
            text="",
            tool_uses=[ToolUse(name="get_weather", input='{"city": "Paris"}', id="tooluse_s")],
            stop_reason="tool_use",
        ),
        BedrockReply(reasoning="Now answer.", text="Sunny."),
    )
    tool = ToolConfig.model_validate({"description": "d", "target": {"type": "lambda", "function": "fn"}})
    loop = ToolLoop(provider(**THINKING), {"get_weather": tool}, FakeRunner(), max_rounds=2)

    async def collect() -> list[Any]:
        call = ModelCall(messages=USER, tools=[WEATHER], tool_choice="auto", max_tokens=500)
        return [e async for e in loop.stream(call)]

    events = asyncio.run(collect())
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Sunny."
    assert len([e for e in events if isinstance(e, ReasoningDone)]) == 2
    turn = sent(fake)["messages"][1]["content"]
    assert turn[0]["reasoningContent"]["reasoningText"]["text"] == "Ask the tool."
    assert "thinking" in sent(fake)["additionalModelRequestFields"]
