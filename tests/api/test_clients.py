"""The two clients users point at the gateway, unpatched, against the real app under uvicorn."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import openai
import pytest
from adaptive_sdk import Adaptive

from tests.conftest import DEV_KEY
from tests.servers import serve_app


@pytest.fixture
def base_url(aws: dict[str, str]) -> Iterator[str]:
    from handler.wiring import create_app

    with serve_app(create_app()) as url:
        yield url


def test_openai_sdk_non_streaming(base_url: str) -> None:
    client = openai.OpenAI(base_url=f"{base_url}/api/v1", api_key=DEV_KEY, max_retries=0)
    completion = client.chat.completions.create(
        model="demo",
        messages=[{"role": "user", "content": "Hello from openai"}],
        stop="openai",
        max_tokens=50,
        temperature=0.5,
        n=2,
        user="someone",
        metadata={"team": "sdk"},
    )
    assert completion.object == "chat.completion"
    assert [c.message.content for c in completion.choices] == ["Hello from ", "Hello from "]
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens == 4
    extra = completion.model_extra or {}
    uuid.UUID(extra["session_id"])


def test_openai_sdk_maps_errors_to_typed_exceptions(base_url: str) -> None:
    client = openai.OpenAI(base_url=f"{base_url}/api/v1", api_key=DEV_KEY, max_retries=0)
    with pytest.raises(openai.NotFoundError, match="EntityNotFound"):
        client.chat.completions.create(model="ghost", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError, match="temperature"):
        client.chat.completions.create(
            model="demo", messages=[{"role": "user", "content": "x"}], temperature=9
        )


def test_adaptive_sdk_non_streaming(base_url: str) -> None:
    client = Adaptive(base_url=base_url, api_key=DEV_KEY)
    session = uuid.uuid4()
    response = client.chat.create(
        model="echo",
        project="demo",
        messages=[{"role": "user", "content": "Hello from adaptive"}],
        session_id=session,
        labels={"team": "sdk"},
        max_tokens=2,
    )
    assert response.session_id == session
    (choice,) = response.choices
    assert choice.message.content == "Hello from"
    assert choice.finish_reason == "length"
    assert choice.model == "demo/echo"
    uuid.UUID(choice.completion_id)
    assert response.usage.completion_tokens == 2
