"""The server-side tool loop end to end (non-streaming): the echo model calls a real HTTP tool and a
Lambda tool on moto, the gateway runs them and feeds the results back, the client gets the answer."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.testclient import TestClient

from tests.conftest import completion_items
from tests.tools.conftest import SECRET_VALUE, ToolServer, ask, tool_project

CHAT = "/api/v1/chat/completions"


def stored(completion_id: str, client: TestClient) -> dict[str, Any]:
    response = client.get(f"/api/v1/completions/{completion_id}")
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()
    return record


def test_model_calls_http_and_lambda_tools_and_answers_with_their_results(
    client: TestClient, tool_server: ToolServer, lambda_tool: str
) -> None:
    project = tool_project(tool_server, lambda_tool)
    response = client.post(CHAT, json=ask(project, "Paris", stream_options={"include_usage": True}))
    assert response.status_code == 200, response.text
    choice = response.json()["choices"][0]

    # The client sees the final answer only: no tool calls, finish_reason stop.
    assert choice["finish_reason"] == "stop"
    assert "tool_calls" not in choice["message"]
    content = choice["message"]["content"]
    assert '{"forecast":"sunny over Paris"}' in content
    # The docker-less Lambda answers with what it was sent: the gateway's envelope.
    lambda_payload = orjson.loads(content[content.index('{"tool"') :].split(" ")[0])
    assert lambda_payload["tool"] == "lookup"
    assert lambda_payload["project"] == project
    assert lambda_payload["arguments"] == {"query": "Paris"}

    # The HTTP tool got the arguments as its body, its auth header from SSM, and who is calling.
    [request] = tool_server.requests
    assert request.json() == {"query": "Paris"}
    assert request.headers["authorization"] == SECRET_VALUE
    assert request.headers["x-gateway-tool"] == "weather"
    assert request.headers["x-gateway-project"] == project

    # The configured-off tool was neither offered nor run.
    assert all(r.path != "/text" for r in tool_server.requests)

    record = stored(choice["completion_id"], client)
    runs = {run["name"]: run for run in record["tool_runs"]}
    assert set(runs) == {"weather", "lookup"}
    assert runs["weather"]["arguments"] == '{"query":"Paris"}'
    assert runs["weather"]["result"] == '{"forecast":"sunny over Paris"}'
    assert runs["weather"]["error"] is None
    assert runs["lookup"]["result"].startswith('{"tool":"lookup"')
    assert all(run["round"] == 1 and run["duration_ms"] > 0 for run in runs.values())
    assert record["content"] == content
    # Usage is the sum of both model rounds: the tool-calling round produced 2 tokens (one per call).
    usage = response.json()["usage"]
    assert usage["completion_tokens"] == record["usage"]["completion_tokens"] > 2


def test_tools_switches_override_the_config_for_one_request(
    client: TestClient, tool_server: ToolServer, lambda_tool: str
) -> None:
    project = tool_project(tool_server, lambda_tool)
    body = ask(project, tools=[{"id": "lookup", "enabled": False}, {"id": "shout", "enabled": True}])
    response = client.post(CHAT, json=body)
    assert response.status_code == 200, response.text
    choice = response.json()["choices"][0]
    assert "plain text result" in choice["message"]["content"]  # `shout`, off in config, on here
    assert '"tool":"lookup"' not in choice["message"]["content"]  # `lookup`, on in config, off here
    assert sorted(r.path for r in tool_server.requests) == ["/text", "/weather"]
    names = sorted(run["name"] for run in stored(choice["completion_id"], client)["tool_runs"])
    assert names == ["shout", "weather"]


def test_use_tools_false_turns_every_tool_off(
    client: TestClient, tool_server: ToolServer, lambda_tool: str
) -> None:
    project = tool_project(tool_server, lambda_tool)
    body = ask(project, "Just echo me", use_tools=False, tools=[{"id": "shout", "enabled": True}])
    response = client.post(CHAT, json=body)
    assert response.status_code == 200, response.text
    choice = response.json()["choices"][0]
    assert choice["message"]["content"] == "Just echo me"
    assert tool_server.requests == []
    assert stored(choice["completion_id"], client)["tool_runs"] == []


def test_unknown_tool_id_is_a_400_naming_it(
    client: TestClient, tool_server: ToolServer, lambda_tool: str
) -> None:
    project = tool_project(tool_server, lambda_tool)
    response = client.post(CHAT, json=ask(project, tools=[{"id": "nope", "enabled": True}]))
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "tools"
    assert "'nope'" in response.json()["error"]["message"]
    assert completion_items() == []


def test_a_function_tool_named_like_a_server_tool_is_a_400(
    client: TestClient, tool_server: ToolServer, lambda_tool: str
) -> None:
    project = tool_project(tool_server, lambda_tool)
    function = {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}
    response = client.post(CHAT, json=ask(project, tools=[function]))
    assert response.status_code == 400
    assert "weather" in response.json()["error"]["message"]
    # Switching the server-side tool off for the request resolves the clash.
    response = client.post(CHAT, json=ask(project, tools=[function, {"id": "weather", "enabled": False}]))
    assert response.status_code == 200, response.text


def test_failing_and_timing_out_tools_are_error_results_for_the_model_never_a_500(
    client: TestClient, tool_server: ToolServer, lambda_tool: str
) -> None:
    tools = {
        "broken": {"description": "A 500", "target": {"type": "http", "url": f"{tool_server.url}/fail"}},
        "slow": {
            "description": "Never answers in time",
            "target": {"type": "http", "url": f"{tool_server.url}/slow", "timeout_s": 0.3},
        },
        "nowhere": {"description": "Refused", "target": {"type": "http", "url": "http://127.0.0.1:9/x"}},
    }
    project = tool_project(tool_server, lambda_tool, name="flaky", tools=tools)
    response = client.post(CHAT, json=ask(project))
    assert response.status_code == 200, response.text
    choice = response.json()["choices"][0]
    assert choice["finish_reason"] == "stop"
    runs = {run["name"]: run for run in stored(choice["completion_id"], client)["tool_runs"]}
    assert runs["broken"]["result"] is None
    assert runs["broken"]["error"] == "the tool endpoint answered HTTP 500: database is down"
    assert runs["slow"]["error"] == "the tool did not answer within 0.3 s"
    assert 250 < runs["slow"]["duration_ms"] < 3000
    assert runs["nowhere"]["error"].startswith("the tool endpoint could not be reached")
    # The model saw each error as the tool's result, as JSON.
    content = choice["message"]["content"]
    assert '{"error":"the tool endpoint answered HTTP 500: database is down"}' in content
    assert '{"error":"the tool did not answer within 0.3 s"}' in content
    assert tool_server.disconnected.wait(5)  # the slow tool's request was abandoned, not left open


def test_n_choices_each_run_their_own_tools(
    client: TestClient, tool_server: ToolServer, lambda_tool: str
) -> None:
    project = tool_project(tool_server, lambda_tool)
    response = client.post(CHAT, json=ask(project, n=2, tools=[{"id": "lookup", "enabled": False}]))
    assert response.status_code == 200, response.text
    choices = response.json()["choices"]
    assert [c["message"]["content"] for c in choices] == ['{"forecast":"sunny over Paris"}'] * 2
    assert len(tool_server.requests) == 2
    for choice in choices:
        [run] = stored(choice["completion_id"], client)["tool_runs"]
        assert run["name"] == "weather"
