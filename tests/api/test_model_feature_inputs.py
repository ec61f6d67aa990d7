"""Request fields a model cannot honour: a 400 naming the field, before any model is called, and
nothing stored (completions/model_features.py, contract/chat.py ThinkingBlock)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import put_project, table_items

URL = "/api/v1/chat/completions"
MSG = [{"role": "user", "content": "hi"}]


@pytest.fixture
def features(client: TestClient) -> TestClient:
    put_project(
        {
            "project": "features",
            "default_model": "claude",
            "models": {
                # Never reached: every case below is refused before a model is called.
                "claude": {
                    "provider": "bedrock",
                    "model_id": "anthropic.claude-3-haiku-20240307-v1:0",
                    "max_output_tokens": 4096,
                },
                "echo": {"provider": "echo"},
            },
            "limits": {"max_tokens": 100000},
        }
    )
    return client


CASES: list[tuple[str, dict[str, Any], str]] = [
    ("effort without thinking", {"reasoning_effort": "high"}, "reasoning_effort"),
    ("effort on echo", {"model": "features/echo", "reasoning_effort": "low"}, "reasoning_effort"),
    ("effort unknown", {"reasoning_effort": "extreme"}, "reasoning_effort"),
    ("max_tokens over the model's", {"max_tokens": 8192}, "max_tokens"),
    ("max_completion_tokens over the model's", {"max_completion_tokens": 8192}, "max_completion_tokens"),
    (
        "thinking block without signature",
        {
            "messages": [
                *MSG,
                {
                    "role": "assistant",
                    "content": "x",
                    "thinking_blocks": [{"type": "thinking", "thinking": "t"}],
                },
                {"role": "user", "content": "y"},
            ]
        },
        "messages[1].thinking_blocks[0]",
    ),
]


def test_refused_with_the_field_named(features: TestClient) -> None:
    # One app for every case: building the emulated stack is the slow part.
    for case, extra, param in CASES:
        response = features.post(URL, json={"model": "features", "messages": MSG, **extra})
        assert response.status_code == 400, (case, response.text)
        assert response.json()["error"]["param"] == param, case
    assert table_items() == []
