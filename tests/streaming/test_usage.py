"""Usage reports add up to the stored records: streamed and JSON requests, through each provider
kind (echo, an OpenAI-compatible server, Bedrock), priced and unpriced models, cached tokens.

The report is read from the aggregate counters written with the records (never a scan), so these
tests compare two independent paths to the same numbers: the report, and the records themselves.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import pytest

from handler.config.models import Quotas
from handler.store.keys import DynamoKeyStore
from tests.fakes.bedrock_server import BedrockReply, FakeBedrock
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.streaming.conftest import CHAT, Gateway, chat, data_lines, project, records

PRICES = {"input": 3.0, "output": 15.0, "cache_read": 0.3}


def usage(gateway: Gateway, name: str, **params: str) -> Any:
    with gateway.client() as client:
        response = client.get(f"/api/v1/projects/{name}/usage", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def send(gateway: Gateway, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    with gateway.client() as client:
        if body.get("stream"):
            with client.stream("POST", CHAT, json=body, headers=headers) as response:
                assert response.status_code == 200
                assert list(data_lines(response.iter_lines()))[-1] == "[DONE]"
        else:
            response = client.post(CHAT, json=body, headers=headers)
            assert response.status_code == 200, response.text


def summed(stored: list[dict[str, Any]], by: str) -> dict[str, dict[str, Any]]:
    """What the records add up to, grouped as the report groups them."""
    groups: dict[str, dict[str, Any]] = defaultdict(
        lambda: (
            dict.fromkeys(
                ("requests", "prompt_tokens", "completion_tokens", "cached_tokens", "unpriced_completions"), 0
            )
            | {"cost_usd": 0.0}
        )
    )
    for r in stored:
        key = {"model": r["model"], "key": r["key_id"], "day": None}[by]
        g = groups[key]
        if r["index"] == 0:  # a request's choices share its prompt
            g["requests"] += 1
            g["prompt_tokens"] += r["usage"]["prompt_tokens"]
            g["cached_tokens"] += r["usage"]["cached_tokens"] or 0  # null: none reported
        g["completion_tokens"] += r["usage"]["completion_tokens"]
        g["cost_usd"] += r["cost_usd"] or 0.0
        g["unpriced_completions"] += r["cost_usd"] is None
    return dict(groups)


def same(report_group: dict[str, Any], expected: dict[str, Any]) -> None:
    for field, value in expected.items():
        if field == "cost_usd":
            assert report_group[field] == pytest.approx(value, abs=1e-9), field
        else:
            assert report_group[field] == value, field


def test_the_report_equals_the_sum_of_the_stored_records(
    gateway: Gateway, openai_fake: FakeOpenAI, bedrock_fake: FakeBedrock, capsys: pytest.CaptureFixture[str]
) -> None:
    name = project(
        "spend",
        {
            "e": {"provider": "echo", "prices": PRICES},
            "o": {"provider": "openai", "base_url": openai_fake.base_url, "model": "up", "prices": PRICES},
            "b": {"provider": "bedrock", "model_id": "anthropic.fake-v1:0", "prices": PRICES},
            "u": {"provider": "echo"},  # no prices: no cost, and the record says so
        },
    )
    _, secret = DynamoKeyStore("chat-gateway").create([name], quotas=Quotas(requests_per_minute=100))
    as_key = {"Authorization": f"Bearer {secret}"}
    for stream in (True, False):
        openai_fake.enqueue(Reply(text="cached answer here", prompt_tokens=20, cached_tokens=8))
        bedrock_fake.enqueue(BedrockReply(text="from bedrock", input_tokens=9, cache_read=5))
        for model in ("e", "o", "b", "u"):
            send(gateway, chat(f"{name}/{model}", stream=stream))
        send(gateway, chat(f"{name}/e", stream=stream, n=2), headers=as_key)
    assert len(gateway.saves.wait(10)) == 10
    stored = records()
    assert len(stored) == 12
    by_model = {r["model"]: r for r in stored}
    assert by_model[f"{name}/u"]["cost_usd"] is None
    assert by_model[f"{name}/u"]["cost_note"] == "no prices configured for model 'u'"
    openai_record = by_model[f"{name}/o"]
    assert openai_record["usage"]["cached_tokens"] == 8
    assert openai_record["cost_usd"] == pytest.approx(
        (12 * 3.0 + 8 * 0.3 + openai_record["usage"]["completion_tokens"] * 15.0) / 1e6
    )
    assert (
        by_model[f"{name}/b"]["usage"] | {"cached_tokens": 5, "prompt_tokens": 14}
        == by_model[f"{name}/b"]["usage"]
    )
    for group_by in ("model", "key"):
        report = usage(gateway, name, group_by=group_by)
        expected = summed(stored, group_by)
        assert [g["key"] for g in report["groups"]] == sorted(expected)
        for group in report["groups"]:
            same(group, expected[group["key"]])
    [day] = usage(gateway, name, group_by="day")["groups"]
    same(day, summed(stored, "day")[None])
    assert day["requests"] == 10 and day["unpriced_completions"] == 2

    from gatewayctl.cli import main

    capsys.readouterr()
    assert main(["usage", "--project", name, "--group-by", "model", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == usage(gateway, name, group_by="model")


def test_a_key_sees_only_its_own_projects_usage(gateway: Gateway) -> None:
    """Another project answers exactly as a missing one: a key cannot learn which projects exist."""
    _, secret = DynamoKeyStore("chat-gateway").create(["demo"])
    mine = {"Authorization": f"Bearer {secret}"}
    with gateway.client() as client:
        assert client.get("/api/v1/projects/demo/usage", headers=mine).status_code == 200
        theirs = client.get("/api/v1/projects/lab/usage", headers=mine)
        missing = client.get("/api/v1/projects/nope/usage", headers=mine)
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["error"]["message"] == "EntityNotFound: project 'lab' does not exist"
    assert missing.json()["error"]["message"] == "EntityNotFound: project 'nope' does not exist"


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"group_by": "user"}, "group_by"),
        ({"from": "yesterday"}, "from"),
        ({"from": "2026-12-05", "to": "2026-12-01"}, "from"),
    ],
)
def test_bad_report_parameters_are_named(gateway: Gateway, params: dict[str, str], param: str) -> None:
    with gateway.client() as client:
        response = client.get("/api/v1/projects/demo/usage", params=params)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
