"""Client-side function tools: an unpatched `openai` SDK client runs a two-turn function-calling
exchange through the gateway (real uvicorn) against an OpenAI-compatible fake upstream."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import AUTH, DEV_KEY, put_project
from tests.fakes.openai_server import FakeOpenAI, Reply, ToolCall
from tests.servers import serve_app

WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture
def base_url(aws: dict[str, str]) -> Iterator[str]:
    from handler.wiring import create_app

    with serve_app(create_app()) as url:
        yield url


@pytest.fixture
def upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(model="upstream-model") as fake:
        yield fake


def first_turn(
    client: openai.OpenAI, stream: bool, **kwargs: Any
) -> tuple[str, str, list[dict[str, Any]], str]:
    """(finish_reason, content, tool_calls, completion_id) of the first turn, streamed or not."""
    if not stream:
        completion = client.chat.completions.create(stream=False, **kwargs)
        choice = completion.choices[0]
        made = [c.model_dump() for c in choice.message.tool_calls or []]
        cid = (choice.model_extra or {})["completion_id"]
        return choice.finish_reason, choice.message.content or "", made, cid
    content, finish, cid = "", "", ""
    calls: dict[int, dict[str, Any]] = {}
    for chunk in client.chat.completions.create(stream=True, **kwargs):
        for choice in chunk.choices:
            cid = (choice.model_extra or {}).get("completion_id", cid)
            content += choice.delta.content or ""
            finish = choice.finish_reason or finish
            for tc in choice.delta.tool_calls or []:
                entry = calls.setdefault(
                    tc.index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
                )
                entry["id"] = tc.id or entry["id"]
                if tc.function is not None:
                    entry["function"]["name"] += tc.function.name or ""
                    entry["function"]["arguments"] += tc.function.arguments or ""
    return finish, content, [calls[i] for i in sorted(calls)], cid


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_openai_sdk_two_turn_function_calling(base_url: str, upstream: FakeOpenAI, stream: bool) -> None:
    put_project(
        {
            "project": "agents",
            "default_model": "gpt",
            "models": {
                "gpt": {"provider": "openai", "base_url": upstream.base_url, "model": "upstream-model"}
            },
        }
    )
    upstream.enqueue(
        Reply(
            text="",
            tool_calls=[ToolCall("get_weather", '{"city": "Paris"}', id="call_abc")],
            finish_reason="tool_calls",
        ),
        Reply(text="It is sunny in Paris."),
    )
    client = openai.OpenAI(base_url=f"{base_url}/api/v1", api_key=DEV_KEY, max_retries=0)
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]

    finish, content, calls, first_id = first_turn(
        client, stream, model="agents", messages=messages, tools=[WEATHER], tool_choice="auto"
    )
    assert finish == "tool_calls"
    assert content == ""
    assert [(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls] == [
        ("call_abc", "get_weather", {"city": "Paris"})
    ]
    # The upstream was offered the function, in OpenAI's shape, with the client's tool_choice.
    sent = upstream.bodies[0]
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert sent["tools"][0]["function"]["parameters"] == WEATHER["function"]["parameters"]
    assert sent["tool_choice"] == "auto"

    # Turn two: the client ran the function and sends its result back (linking the earlier completion).
    messages += [
        {"role": "assistant", "content": None, "tool_calls": calls, "completion_id": first_id},
        {"role": "tool", "tool_call_id": "call_abc", "content": '{"sky": "clear", "celsius": 21}'},
    ]
    finish, content, calls, second_id = first_turn(
        client, stream, model="agents", messages=messages, tools=[WEATHER]
    )
    assert (finish, content, calls) == ("stop", "It is sunny in Paris.", [])

    sent = upstream.bodies[1]
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "tool"]
    assert sent["messages"][1]["tool_calls"][0]["id"] == "call_abc"
    assert sent["messages"][2] == {
        "role": "tool",
        "tool_call_id": "call_abc",
        "content": '{"sky": "clear", "celsius": 21}',
    }

    with httpx.Client(base_url=base_url, headers=AUTH) as http:
        first = http.get(f"/api/v1/completions/{first_id}").json()
        second = http.get(f"/api/v1/completions/{second_id}").json()
    assert first["finish_reason"] == "tool_calls"
    assert first["tool_calls"][0]["function"]["name"] == "get_weather"
    assert first["tool_runs"] == []  # client-side: the gateway ran nothing
    assert second["parent_completion_ids"] == [first_id]
