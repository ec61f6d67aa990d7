"""A table of bad inputs: each gets the right 4xx, names the field, and writes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import put_project, table_items

URL = "/api/v1/chat/completions"
MSG = [{"role": "user", "content": "hi"}]


def body(**overrides: Any) -> dict[str, Any]:
    return {"model": "demo", "messages": MSG, **overrides}


CASES: list[tuple[str, Any, int, str]] = [
    # (case, JSON body, status, param named in the error)
    ("messages missing", {"model": "demo"}, 400, "messages"),
    ("messages empty", body(messages=[]), 400, "messages"),
    ("messages not a list", body(messages="hi"), 400, "messages"),
    ("message role unknown", body(messages=[{"role": "robot", "content": "x"}]), 400, "messages[0].role"),
    (
        "message content wrong type",
        body(messages=[{"role": "user", "content": 5}]),
        400,
        "messages[0].content",
    ),
    ("user content null", body(messages=[{"role": "user", "content": None}]), 400, "messages[0]"),
    ("only system messages", body(messages=[{"role": "system", "content": "x"}]), 400, "messages"),
    (
        "content part unknown",
        body(messages=[{"role": "user", "content": [{"type": "audio"}]}]),
        400,
        "messages[0].content",
    ),
    (
        "message completion_id not uuid",
        body(messages=[{"role": "user", "content": "x", "completion_id": "abc"}]),
        400,
        "messages[0].completion_id",
    ),
    ("model missing", {"messages": MSG}, 400, "model"),
    ("model not a string", body(model=3), 400, "model"),
    ("model empty", body(model=""), 400, "model"),
    ("model trailing slash", body(model="demo/"), 400, "model"),
    ("max_tokens negative", body(max_tokens=-1), 400, "max_tokens"),
    ("max_tokens string", body(max_tokens="ten"), 400, "max_tokens"),
    ("max_tokens over project cap", body(max_tokens=100_000), 400, "max_tokens"),
    ("temperature too high", body(temperature=3), 400, "temperature"),
    ("temperature not a number", body(temperature="hot"), 400, "temperature"),
    ("top_p above 1", body(top_p=1.5), 400, "top_p"),
    ("max_ttft_ms negative", body(max_ttft_ms=-5), 400, "max_ttft_ms"),
    ("n negative", body(n=-1), 400, "n"),
    ("n float", body(n=1.5), 400, "n"),
    ("stream not bool", body(stream="yes"), 400, "stream"),
    ("stream_options not object", body(stream_options=5), 400, "stream_options"),
    ("session_id not uuid", body(session_id="session-1"), 400, "session_id"),
    ("user not a string", body(user=42), 400, "user"),
    ("labels value not string", body(labels={"k": 1}), 400, "labels.k"),
    ("metadata not object", body(metadata=["a"]), 400, "metadata"),
    ("tags not list", body(tags="a"), 400, "tags"),
    ("tags item not string", body(tags=[1]), 400, "tags[0]"),
    ("stop wrong type", body(stop=5), 400, "stop"),
    ("system_prompt_args not object", body(system_prompt_args=[1]), 400, "system_prompt_args"),
    ("use_tools not bool", body(use_tools="no"), 400, "use_tools"),
    ("tools switch missing id", body(tools=[{"enabled": True}]), 400, "tools[0].id"),
    ("tools unknown id", body(tools=[{"id": "nope", "enabled": False}]), 400, "tools"),
    (
        "function tool without name",
        body(tools=[{"type": "function", "function": {}}]),
        400,
        "tools[0].function.name",
    ),
    ("store not bool", body(store="yes"), 400, "store"),
    ("presence_penalty out of range", body(presence_penalty=9), 400, "presence_penalty"),
    ("response_format unknown", body(response_format={"type": "yaml"}), 400, "response_format"),
    ("unknown project", body(model="ghost"), 404, "model"),
    ("unknown model", body(model="demo/ghost"), 404, "model"),
    ("missing template arg", body(model="tmpl"), 400, "system_prompt_args.audience"),
    ("body is a list", [1, 2], 400, "body"),
    ("body is a string", "hello", 400, "body"),
]


@pytest.fixture
def client_with_template(client: TestClient) -> TestClient:
    put_project(
        {
            "project": "tmpl",
            "default_model": "echo",
            "system_prompt": {"template": "Write for {{ audience }}."},
            "models": {"echo": {"provider": "echo"}},
        }
    )
    return client


@pytest.mark.parametrize(("case", "payload", "status", "param"), CASES, ids=[c[0] for c in CASES])
def test_bad_input(
    client_with_template: TestClient, case: str, payload: Any, status: int, param: str
) -> None:
    response = client_with_template.post(URL, json=payload)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["param"] == param, error
    assert param.split("[")[0].split(".")[0] in error["message"] or status == 404
    assert table_items() == []


@pytest.mark.parametrize(
    "raw", [b"{not json", b"", b'{"model": "demo", "messages": [}', b"\xff\xfe", b"null", b"12"]
)
def test_malformed_json_is_400(client: TestClient, raw: bytes) -> None:
    response = client.post(URL, content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert table_items() == []


def test_wrong_method_and_path_use_the_error_shape(client: TestClient) -> None:
    assert client.get(URL).json()["error"]["code"] == "method_not_allowed"
    response = client.post("/api/v1/nothing", json={})
    assert response.status_code == 404
    assert response.json()["error"]["message"].startswith("EntityNotFound: ")
