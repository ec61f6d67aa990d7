"""The one token estimate: `count_tokens`, `split_tokens` and `estimate_prompt_tokens`, and that every
provider that has to estimate a prompt gives the same number for the same call."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from handler.config.models import EchoModel
from handler.providers.base import ModelCall, ToolSpec, UsageReport
from handler.providers.echo import EchoProvider
from handler.providers.tokens import count_tokens, estimate_prompt_tokens, split_tokens
from tests.providers.streams import run

# --- count_tokens and split_tokens -----------------------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 0),
        ("   ", 0),
        ("hello", 1),
        ("Hello there, world!", 5),  # Hello | there | , | world | !
        ('{"city": "Paris"}', 9),  # { " city " : " Paris " }
        ("naïve café", 2),  # \w is Unicode
        ("a\nb\tc", 3),
        ("x" * 1000, 1),
    ],
)
def test_count_tokens_counts_words_and_punctuation(text: str, tokens: int) -> None:
    assert count_tokens(text) == tokens


@pytest.mark.unit
@pytest.mark.parametrize("text", ["", " ", "Hello there, world!  ", "  lead", "a\n\nb", "é!?", "{ }"])
def test_split_tokens_concatenates_back_and_agrees_with_count(text: str) -> None:
    pieces = split_tokens(text)
    assert "".join(pieces) == text
    assert len(pieces) == max(count_tokens(text), 1 if text else 0)


# --- estimate_prompt_tokens --------------------------------------------------------------------------


@pytest.mark.unit
def test_an_empty_call_is_zero() -> None:
    assert estimate_prompt_tokens(ModelCall(messages=[])) == 0
    assert estimate_prompt_tokens(ModelCall(messages=[{"role": "assistant", "content": None}])) == 0


@pytest.mark.unit
def test_system_and_string_contents_are_summed() -> None:
    call = ModelCall(
        system="Be brief.",
        messages=[
            {"role": "user", "content": "Say hello"},
            {"role": "assistant", "content": "Hello there, world!"},
        ],
    )
    assert estimate_prompt_tokens(call) == 3 + 2 + 5


@pytest.mark.unit
def test_text_parts_are_counted_one_by_one_and_images_not_at_all() -> None:
    parts = [
        {"type": "text", "text": "ab"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "text", "text": "cd"},
    ]
    call = ModelCall(messages=[{"role": "user", "content": parts}])
    # Two words, not one "abcd": parts never run together.
    assert estimate_prompt_tokens(call) == 2


@pytest.mark.unit
def test_tool_call_arguments_and_tool_results_count() -> None:
    arguments = '{"city": "Paris"}'
    call = ModelCall(
        messages=[
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": arguments},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 21 C"},
        ],
        tools=[ToolSpec("weather", "Weather by city", {"type": "object"})],  # definitions do not count
    )
    assert estimate_prompt_tokens(call) == 2 + count_tokens(arguments) + 4


@pytest.mark.unit
def test_odd_shapes_count_what_is_text_and_never_fail() -> None:
    call = ModelCall(
        messages=[
            {"role": "user", "content": [{"type": "text", "text": 7}, "loose string", {"type": "text"}]},
            {"role": "assistant", "tool_calls": [{"function": {"arguments": {"parsed": True}}}, "x", {}]},
            {"role": "user", "content": {"unexpected": "dict"}},
            {"role": "user", "content": "ok"},
        ]
    )
    assert estimate_prompt_tokens(call) == 1


# --- every provider estimates the same way -----------------------------------------------------------

RICH = ModelCall(
    system="You answer in one line.",
    messages=[
        {"role": "user", "content": [{"type": "text", "text": "What is"}, {"type": "text", "text": "2+2?"}]},
        {
            "role": "assistant",
            "content": "Let me compute.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "calc", "arguments": '{"x": "2+2"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "4"},
        {"role": "user", "content": "Thanks, and now?"},
    ],
)


def test_echo_reports_the_shared_estimate() -> None:
    events = run(EchoProvider(EchoModel(provider="echo")), RICH)
    usage = events[-1]
    assert isinstance(usage, UsageReport)
    assert usage.prompt_tokens == estimate_prompt_tokens(RICH) == 33


def test_openai_compatible_without_usage_reports_the_shared_estimate() -> None:
    from handler.config.models import OpenAIModel
    from handler.providers.openai_compat import OpenAIProvider
    from tests.fakes.openai_server import FakeOpenAI, Reply

    with FakeOpenAI(Reply(text="fine", usage=False)) as fake:
        model = OpenAIModel(provider="openai", base_url=fake.base_url, model="m")
        events = run(OpenAIProvider(model, lambda name: ""), RICH)
    assert events[-1] == UsageReport(
        prompt_tokens=estimate_prompt_tokens(RICH), completion_tokens=1, estimated=True
    )


@pytest.fixture
def bedrock_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from handler import aws
    from tests.fakes.bedrock_server import FakeBedrock

    with FakeBedrock() as fake:
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", fake.url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_BEARER_TOKEN_BEDROCK"):
            monkeypatch.delenv(name, raising=False)
        aws.reset_clients()
        yield fake
        aws.reset_clients()


def test_bedrock_without_metadata_reports_the_shared_estimate(bedrock_env: Any) -> None:
    from handler.config.models import BedrockModel
    from handler.providers.bedrock import BedrockProvider
    from tests.fakes.bedrock_server import BedrockReply

    bedrock_env.enqueue(BedrockReply(text="fine", usage=False))
    provider = BedrockProvider(BedrockModel(provider="bedrock", model_id="anthropic.fake-v1:0"))
    events = run(provider, RICH)
    assert events[-1] == UsageReport(
        prompt_tokens=estimate_prompt_tokens(RICH), completion_tokens=1, estimated=True
    )
