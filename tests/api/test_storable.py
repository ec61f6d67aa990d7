"""What cannot be stored is refused up front with a 400 naming the field (issue 11, B4).

A lone UTF-16 surrogate is valid JSON (RFC 8259 section 8.2 allows such "unpaired surrogates" and
says their behaviour is unpredictable) but no UTF-8 encodes it, so neither the table nor the retry
queue can keep it; orjson also writes no integer past 64 bits and no nesting past 255 levels, and
would turn NaN into null. Such bodies used to be answered 200 (or 500) and their record lost.
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from tests.conftest import table_items

CHAT = "/api/v1/chat/completions"
BASE = '{"model": "demo", "messages": [{"role": "user", "content": "hi"}]'


def deep(levels: int) -> str:
    return '{"type": "json_object", "x": ' + "[" * levels + "1" + "]" * levels + "}"


CASES = [
    (',"labels": {"team": "\\ud800"}', "labels.team", "surrogate"),
    (',"labels": {"\\udfff": "x"}', "labels.\\udfff", "surrogate"),  # the key, escaped
    (',"tags": ["ok", "\\ud83d"]', "tags[1]", "surrogate"),
    (',"user": "\\udc00"', "user", "surrogate"),
    (',"messages": [{"role": "user", "content": "\\ud800 hi"}]', "messages[0].content", "surrogate"),
    (
        ',"messages": [{"role": "user", "content": [{"type": "text", "text": "\\ud800"}]}]',
        "messages[0].content[0].text",
        "surrogate",
    ),
    (',"response_format": ' + deep(256), "response_format.x", "nested deeper than 64"),
    (',"response_format": ' + deep(900), "response_format.x", "nested deeper than 64"),
    (',"system_prompt_args": {"a": ' + "[" * 300 + "]" * 300 + "}", "system_prompt_args.a", "nested deeper"),
    (',"system_prompt_args": {"n": 123456789012345678901234567890}', "system_prompt_args.n", "64 bits"),
    (',"system_prompt_args": {"n": NaN}', "system_prompt_args.n", "NaN or infinite"),
    (',"response_format": {"type": "text", "x": 1e400}', "response_format.x", "NaN or infinite"),
    (
        ',"messages": [{"role": "user", "content": "hi", "metadata": {"m": [Infinity]}}]',
        "messages[0].metadata.m[0]",
        "NaN",
    ),
]


@pytest.mark.parametrize(("extra", "param", "reason"), CASES)
def test_an_unstorable_body_is_a_400_naming_the_field_and_nothing_is_stored(
    client: TestClient, extra: str, param: str, reason: str
) -> None:
    r = client.post(CHAT, content=BASE + extra + "}", headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"].startswith(param) and reason in error["message"], error
    assert error["message"].startswith(error["param"] + ": ")
    assert table_items() == []


def test_what_is_accepted_is_stored_and_read_back_unchanged(client: TestClient) -> None:
    """Paired surrogates (an emoji), 64 levels of nesting and 64-bit edges are fine, and kept."""
    fmt = {"type": "json_object", "x": json.loads("[" * 62 + "]" * 62)}
    args = {"persona": "a \U0001f600 bot", "big": 2**64 - 1, "small": -(2**63), "f": 1e308}
    body = (
        BASE
        + ', "labels": {"\\ud83d\\ude00": "ok"}, "tags": ["caf\\u00e9"]'
        + f', "response_format": {json.dumps(fmt)}, "system_prompt_args": {json.dumps(args)}}}'
    )
    r = client.post(CHAT, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    stored = client.get(f"/api/v1/completions/{r.json()['choices'][0]['completion_id']}").json()
    assert stored["labels"] == {"\U0001f600": "ok"} and stored["tags"] == ["caf\u00e9"]
    assert stored["params"]["response_format"] == fmt and stored["params"]["system_prompt_args"] == args


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"metric": "m", "value": 1, "reason": "\ud800"}, "reason"),
        ({"metric": "m", "value": 1, "details": {"why": "\udfff"}}, "details.why"),
        ({"metric": "m", "value": 1, "details": {"d": json.loads("[" * 100 + "]" * 100)}}, "details.d"),
        ({"metric": "m", "value": 1, "details": {"n": 2**70}}, "details.n"),
        ({"metric": "m", "value": 1, "user_id": "\ud800"}, "user_id"),
    ],
)
def test_unstorable_feedback_is_a_400_naming_the_field(
    client: TestClient, body: dict[str, object], param: str
) -> None:
    answer = client.post(CHAT, json={"model": "demo", "messages": [{"role": "user", "content": "hi"}]})
    body = {"completion_id": answer.json()["choices"][0]["completion_id"], **body}
    # json.dumps writes a lone surrogate as the escape "\ud800", as a client's JSON would.
    r = client.post(
        "/api/v1/feedback", content=json.dumps(body), headers={"content-type": "application/json"}
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"].startswith(param)
    assert not [i for i in table_items() if i["sk"]["S"].startswith("FEEDBACK#")]


def test_an_unstorable_outcome_is_a_400_naming_the_field(client: TestClient) -> None:
    body = {
        "project_id": "demo",
        "session_id": "5b0c3f6e-8a59-4a7e-9a43-2d3c1a6f0b31",
        "metric": "m",
        "value": 1,
    }
    r = client.post(
        "/api/v1/outcome",
        content=json.dumps({**body, "user_id": "\ud800"}),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "user_id", r.text
    assert table_items() == []
