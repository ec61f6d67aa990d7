"""Input limits: each refused with a 400 that names the field and the limit (413 for the body)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import AUTH, ROOT, put_project, table_items
from tests.servers import serve_app

CHAT = "/api/v1/chat/completions"
LIMITS = {
    "max_tokens": 100,
    "max_n": 2,
    "max_messages": 3,
    "max_message_chars": 50,
    "max_stop": 2,
    "max_stop_chars": 5,
    "max_labels": 2,
    "max_label_chars": 10,
    "max_tags": 2,
    "max_tag_chars": 6,
}
HI = [{"role": "user", "content": "hi"}]

# (what, request fields, param, the limit named in the message)
OVER: list[tuple[str, dict[str, Any], str, int]] = [
    ("max_tokens", {"max_tokens": 101}, "max_tokens", 100),
    ("max_completion_tokens", {"max_completion_tokens": 101}, "max_tokens", 100),
    ("n", {"n": 3}, "n", 2),
    ("messages count", {"messages": HI * 4}, "messages", 3),
    ("message length", {"messages": [*HI, {"role": "user", "content": "x" * 51}]}, "messages[1].content", 50),
    (
        "message parts length",
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "y" * 51}]}]},
        "messages[0].content",
        50,
    ),
    ("stop count", {"stop": ["a", "b", "c"]}, "stop", 2),
    ("stop length", {"stop": "abcdef"}, "stop", 5),
    ("labels count", {"labels": {"a": "1", "b": "2", "c": "3"}}, "labels", 2),
    ("labels via metadata", {"labels": {"a": "1"}, "metadata": {"b": "2", "c": "3"}}, "labels", 2),
    ("label key length", {"labels": {"k" * 11: "v"}}, "labels", 10),
    ("label value length", {"labels": {"k": "v" * 11}}, "labels", 10),
    ("tags count", {"tags": ["a", "b", "c"]}, "tags", 2),
    ("tag length", {"tags": ["abcdefg"]}, "tags", 6),
]
AT = [
    {
        "max_tokens": 100,
        "n": 2,
        "messages": HI * 3,
        "stop": ["abcde", "x"],
        "labels": {"k" * 10: "v" * 10, "b": "2"},
        "tags": ["abcdef", "x"],
    },
    {"messages": [{"role": "user", "content": "x" * 50}]},
]


@pytest.fixture
def limited(module_client: TestClient) -> TestClient:
    client = module_client
    put_project(
        {
            "project": "tight",
            "default_model": "echo",
            "limits": LIMITS,
            "models": {"echo": {"provider": "echo"}},
        }
    )
    return client


@pytest.mark.parametrize(("what", "fields", "param", "limit"), OVER, ids=[o[0] for o in OVER])
def test_each_limit_is_a_400_naming_the_field_and_the_limit(
    limited: TestClient, what: str, fields: dict[str, Any], param: str, limit: int
) -> None:
    r = limited.post(CHAT, json={"model": "tight", "messages": HI, **fields})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"
    assert f"limit of {limit}" in error["message"], error["message"]
    assert error["message"].startswith(f"{param}:")
    assert table_items() == []  # refused before any model call or record


@pytest.mark.parametrize("fields", AT)
def test_values_at_the_limit_pass(limited: TestClient, fields: dict[str, Any]) -> None:
    r = limited.post(CHAT, json={"model": "tight", "messages": HI, **fields})
    assert r.status_code == 200, r.text


def test_defaults_apply_when_a_project_sets_no_limits(module_client: TestClient) -> None:
    client = module_client
    from handler.config.models import Limits

    put_project({"project": "plain", "default_model": "echo", "models": {"echo": {"provider": "echo"}}})
    d = Limits()
    over = {
        "n": d.max_n + 1,
        "max_tokens": d.max_tokens + 1,
        "tags": ["t"] * (d.max_tags + 1),
        "stop": ["s"] * (d.max_stop + 1),
    }
    for field, value in over.items():
        r = client.post(CHAT, json={"model": "plain", "messages": HI, field: value})
        assert r.status_code == 400, (field, r.text)
        assert r.json()["error"]["param"] == field


def documented_defaults() -> dict[str, str]:
    text = (ROOT / "docs" / "limits.md").read_text()
    return dict(re.findall(r"^\| `(\w+)` \| `([^`]+)` \|", text, flags=re.M))


def test_docs_list_every_limit_with_its_real_default() -> None:
    from handler.config.models import Limits
    from handler.settings import Settings

    documented = documented_defaults()
    for name, field in Limits.model_fields.items():
        assert name in documented, f"docs/limits.md does not document {name}"
        assert documented[name] == str(field.default), name
    assert documented["MAX_BODY_BYTES"] == str(Settings.model_fields["max_body_bytes"].default)


# --- body size, on a real server ------------------------------------------------------------------


@pytest.fixture
def small_body_server(clean_aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from handler import wiring
    from handler.wiring import create_app

    monkeypatch.setenv("MAX_BODY_BYTES", "2000")
    wiring.reset()
    with serve_app(create_app()) as url:
        yield url
    wiring.reset()


def big_body(size: int) -> bytes:
    filler = "x" * size
    return ('{"model": "demo", "messages": [{"role": "user", "content": "' + filler + '"}]}').encode()


def test_body_over_the_limit_is_413_with_or_without_content_length(small_body_server: str) -> None:
    url = f"{small_body_server}{CHAT}"
    headers = {**AUTH, "Content-Type": "application/json"}

    def chunked(data: bytes) -> Iterator[bytes]:  # a generator body: sent chunked, no Content-Length
        for i in range(0, len(data), 500):
            yield data[i : i + 500]

    with httpx.Client(timeout=10) as http:
        r = http.post(url, content=big_body(3000), headers=headers)
        assert r.status_code == 413, r.text
        assert r.json()["error"] == {
            "message": "request body exceeds 2000 bytes",
            "type": "invalid_request_error",
            "code": "payload_too_large",
            "param": "body",
        }
        r = http.post(url, content=chunked(big_body(3000)), headers=headers)
        assert "content-length" not in {k.lower() for k in r.request.headers}
        assert r.status_code == 413, r.text
        assert r.json()["error"]["code"] == "payload_too_large"
        # Under the limit, both ways work.
        assert http.post(url, content=big_body(100), headers=headers).status_code == 200
        r = http.post(url, content=chunked(big_body(1500)), headers=headers)
        assert r.status_code == 200, r.text
    assert len([i for i in table_items() if i["sk"]["S"] == "COMPLETION"]) == 2


def test_docs_exist_for_the_lead_to_link() -> None:
    assert Path(ROOT / "docs" / "limits.md").is_file()
