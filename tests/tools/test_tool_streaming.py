"""The tool loop under a real uvicorn with `stream: true`: tool rounds happen before the text, the
SSE stream carries only the answer, and a slow tool does not count against max_ttft_ms."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import AUTH
from tests.servers import serve_app
from tests.tools.conftest import ToolServer, ask, tool_project

CHAT = "/api/v1/chat/completions"


@pytest.fixture
def base_url(aws: dict[str, str]) -> Iterator[str]:
    from handler.wiring import create_app

    with serve_app(create_app()) as url:
        # Warm: a fresh process spends about a second making its AWS clients, and max_ttft_ms counts
        # from the request's arrival.
        warm = {"model": "demo", "messages": [{"role": "user", "content": "hi"}], "store": False}
        assert httpx.post(f"{url}{CHAT}", json=warm, headers=AUTH, timeout=10).status_code == 200
        yield url


def events(response: httpx.Response) -> Iterator[Any]:
    for line in response.iter_lines():
        if line:
            assert line.startswith("data: "), line
            payload = line.removeprefix("data: ")
            yield payload if payload == "[DONE]" else orjson.loads(payload)


def test_streamed_answer_after_http_and_lambda_tools(
    base_url: str, tool_server: ToolServer, lambda_tool: str
) -> None:
    project = tool_project(tool_server, lambda_tool)
    body = ask(project, "Oslo", stream=True, stream_options={"include_usage": True})
    with httpx.Client(base_url=base_url, headers=AUTH, timeout=10) as client:
        with client.stream("POST", CHAT, json=body) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            chunks = list(events(response))
        assert chunks[-1] == "[DONE]"
        usage_chunk = chunks[-2]
        assert usage_chunk["choices"] == [] and usage_chunk["usage"]["completion_tokens"] > 2
        choices = [c["choices"][0] for c in chunks[:-2]]
        # No tool call reaches the client: only content deltas, then the finish.
        assert all("tool_calls" not in c["delta"] for c in choices)
        assert [c["finish_reason"] for c in choices][-1] == "stop"
        text = "".join(c["delta"]["content"] for c in choices)
        assert '{"forecast":"sunny over Oslo"}' in text
        assert '"tool":"lookup"' in text
        assert tool_server.bodies == [{"query": "Oslo"}]

        record = client.get(f"/api/v1/completions/{choices[0]['completion_id']}").json()
        assert record["content"] == text
        assert sorted(run["name"] for run in record["tool_runs"]) == ["lookup", "weather"]


def test_slow_tool_does_not_trip_max_ttft_and_headers_come_before_the_tool_answers(
    base_url: str, tool_server: ToolServer, lambda_tool: str
) -> None:
    """The model's tool call is its first output (as a client tool call is): the SSE response starts
    while the tool is still running, and the tool's time is not charged to max_ttft_ms."""
    tools = {
        "slowpoke": {"description": "Slow", "target": {"type": "http", "url": f"{tool_server.url}/slow"}}
    }
    project = tool_project(tool_server, lambda_tool, name="slowtools", tools=tools)
    with httpx.Client(base_url=base_url, headers=AUTH, timeout=10) as client:
        with client.stream("POST", CHAT, json=ask(project, stream=True, max_ttft_ms=300)) as response:
            # Status and headers are here, and the tool is still held at its gate.
            assert response.status_code == 200
            assert tool_server.request_received.wait(5)
            assert tool_server.completed == 0
            tool_server.release()
            chunks = list(events(response))
        text = "".join(c["choices"][0]["delta"]["content"] for c in chunks[:-1])
        assert text == "late"
        assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


def test_streaming_with_use_tools_false_is_a_plain_echo(
    base_url: str, tool_server: ToolServer, lambda_tool: str
) -> None:
    project = tool_project(tool_server, lambda_tool)
    with (
        httpx.Client(base_url=base_url, headers=AUTH, timeout=10) as client,
        client.stream("POST", CHAT, json=ask(project, "no tools", stream=True, use_tools=False)) as response,
    ):
        chunks = list(events(response))
    assert "".join(c["choices"][0]["delta"]["content"] for c in chunks[:-1]) == "no tools"
    assert tool_server.requests == []
