"""Request fields reach a real OpenAI-compatible upstream as they should, through the whole gateway."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from fastapi.testclient import TestClient

from tests.conftest import put_project
from tests.fakes.openai_server import FakeOpenAI, Reply


@pytest.fixture
def upstream(client: TestClient) -> Iterator[FakeOpenAI]:
    with FakeOpenAI(default=Reply(text="Upstream says hi")) as fake:
        boto3.client("ssm").put_parameter(
            Name="/chat-gateway/secrets/up", Value="sk-upstream-1", Type="SecureString"
        )
        put_project(
            {
                "project": "fwd",
                "default_model": "up",
                "system_prompt": {"template": "You are {{ persona }}."},
                "models": {
                    "up": {
                        "provider": "openai",
                        "base_url": fake.base_url,
                        "model": "served-model",
                        "api_key_param": "/chat-gateway/secrets/up",
                    }
                },
            }
        )
        yield fake


def test_sampling_fields_system_prompt_and_key_are_forwarded(
    client: TestClient, upstream: FakeOpenAI
) -> None:
    response = client.post(
        "/api/v1/chat/completions",
        json={
            "model": "fwd",
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
            "system_prompt_args": {"persona": "a tester"},
            "max_tokens": 64,
            "temperature": 0.3,
            "top_p": 0.8,
            "stop": "END",
            "seed": 42,
            "presence_penalty": 0.1,
            "frequency_penalty": 0.2,
            "response_format": {"type": "json_object"},
            "labels": {"not": "forwarded"},
            "tags": ["not-forwarded"],
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "Upstream says hi"
    (request,) = upstream.requests
    sent: dict[str, Any] = request.json()
    assert request.headers["authorization"] == "Bearer sk-upstream-1"
    assert sent["model"] == "served-model"
    assert sent["messages"] == [
        {"role": "system", "content": "You are a tester.\n\nBe brief."},
        {"role": "user", "content": "hi"},
    ]
    expected = {
        "max_tokens": 64,
        "temperature": 0.3,
        "top_p": 0.8,
        "stop": ["END"],
        "seed": 42,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.2,
        "response_format": {"type": "json_object"},
    }
    assert {k: sent.get(k) for k in expected} == expected
    for private in ("labels", "tags", "metadata", "session_id", "store", "system_prompt_args"):
        assert private not in sent
    assert "sk-upstream-1" not in response.text


def test_upstream_usage_and_finish_reason_are_mapped(client: TestClient, upstream: FakeOpenAI) -> None:
    upstream.enqueue(
        Reply(text="one two three", finish_reason="length", prompt_tokens=21, completion_tokens=3)
    )
    body = client.post(
        "/api/v1/chat/completions",
        json={
            "model": "fwd/up",
            "messages": [{"role": "user", "content": "count"}],
            "system_prompt_args": {"persona": "x"},
        },
    ).json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"] == {"prompt_tokens": 21, "completion_tokens": 3, "total_tokens": 24}
