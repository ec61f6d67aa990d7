"""Streaming tests: the real app under uvicorn on 127.0.0.1, fake upstreams on 127.0.0.1, moto AWS."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import AUTH, put_project, table_items
from tests.fakes.bedrock_server import FakeBedrock
from tests.fakes.openai_server import FakeOpenAI
from tests.servers import serve_app

CHAT = "/api/v1/chat/completions"


@dataclass
class Saves:
    """Every `CompletionService.save` the app finished, by status: a signal to wait on, not a sleep."""

    statuses: list[str] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def add(self, status: str) -> None:
        with self.cond:
            self.statuses.append(status)
            self.cond.notify_all()

    def wait(self, count: int = 1, timeout: float = 10.0) -> list[str]:
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.statuses) >= count, timeout):
                raise AssertionError(f"expected {count} stored outcome(s), saw {self.statuses}")
            return list(self.statuses)


@dataclass
class Gateway:
    url: str
    saves: Saves

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=AUTH, timeout=10.0, **kwargs)

    def warm(self) -> None:
        """One unstored request first: a fresh process spends ~1 s creating its AWS clients, and
        `max_ttft_ms` counts from the request's arrival, so a cold first request would spend a
        test's whole deadline before calling any model."""
        with self.client() as client:
            body = {"model": "demo", "messages": [{"role": "user", "content": "hi"}], "store": False}
            response = client.post(CHAT, json=body)
            assert response.status_code == 200, response.text
        self.saves.wait(1)
        with self.saves.cond:
            self.saves.statuses.clear()


@pytest.fixture
def gateway(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateway]:
    """The app on a real uvicorn; `saves` says when (and with what status) records were written."""
    from handler.api.app import create_app
    from handler.completions.service import CompletionService, Outcome

    saves = Saves()
    original = CompletionService.save

    async def save(self: CompletionService, outcome: Outcome) -> None:
        try:
            await original(self, outcome)
        finally:
            saves.add(outcome.status)

    monkeypatch.setattr(CompletionService, "save", save)
    with serve_app(create_app()) as url:
        gateway = Gateway(url, saves)
        gateway.warm()
        yield gateway


@pytest.fixture
def openai_fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def bedrock_fake(monkeypatch: pytest.MonkeyPatch, aws: dict[str, str]) -> Iterator[FakeBedrock]:
    """A fake Bedrock runtime; botocore reaches it over real HTTP (moto matches only AWS hosts)."""
    from handler import aws as aws_clients

    with FakeBedrock() as fake:
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", fake.url)
        # The `aws` fixture began with no clients and nothing has made a Bedrock one since: make it
        # now (other clients stay warm), not inside a test's max_ttft_ms window.
        aws_clients.client("bedrock-runtime")
        yield fake
    aws_clients.reset_clients()


def project(name: str, models: dict[str, dict[str, Any]], default: str | None = None, **extra: Any) -> str:
    """Store a project config in the emulated SSM; returns its name."""
    put_project({"project": name, "default_model": default or next(iter(models)), "models": models, **extra})
    return name


def records() -> list[dict[str, Any]]:
    """The stored completion records (their JSON bodies), in index order."""
    bodies = [orjson.loads(item["body"]["S"]) for item in table_items() if "body" in item]
    return sorted(bodies, key=lambda r: (r["request_id"], r["index"]))


def data_lines(lines: Iterator[str]) -> Iterator[Any]:
    """Each SSE event's payload, parsed; `[DONE]` as the string. Fails on anything but `data:` lines."""
    for line in lines:
        if not line:
            continue
        assert line.startswith("data: "), f"not a data line: {line!r}"
        payload = line[len("data: ") :]
        yield payload if payload == "[DONE]" else orjson.loads(payload)


def chat(model: str, text: str = "Hello there, streaming world", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], "stream": True, **extra}
