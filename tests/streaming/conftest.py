"""Streaming tests: the real app under uvicorn on 127.0.0.1, fake upstreams on 127.0.0.1, moto AWS."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import httpx
import orjson
import pytest

from tests.conftest import AUTH, completion_items, emulated_aws, put_project
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

    def clear(self) -> None:
        with self.cond:
            self.statuses.clear()


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
        self.saves.clear()


@dataclass
class Stack:
    gateway: Gateway
    openai: FakeOpenAI
    bedrock: FakeBedrock


@pytest.fixture(scope="package")
def stack() -> Iterator[Stack]:
    """moto (as the `aws` fixture sets it up), the app under uvicorn and the fake upstreams, once
    for the package: building AWS clients and servers per test would cost ~2 s a test. Tests get
    them through `gateway`, `openai_fake` and `bedrock_fake`, which reset what a test can change,
    and name their projects uniquely (project config is cached by the app)."""

    from handler import aws as aws_clients
    from handler.completions.service import CompletionService, Outcome
    from handler.wiring import create_app

    saves = Saves()
    original = CompletionService.save

    async def save(self: CompletionService, outcome: Outcome) -> None:
        try:
            await original(self, outcome)
        finally:
            saves.add(outcome.status)

    with pytest.MonkeyPatch.context() as mp, FakeOpenAI() as openai_fake, FakeBedrock() as bedrock_fake:
        # botocore reaches the fake Bedrock over real HTTP: moto only answers AWS hostnames.
        mp.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", bedrock_fake.url)
        mp.setattr(CompletionService, "save", save)
        with emulated_aws(mp):
            aws_clients.client("bedrock-runtime")  # made now, not inside a test's max_ttft_ms window
            with serve_app(create_app()) as url:
                gateway = Gateway(url, saves)
                gateway.warm()
                yield Stack(gateway, openai_fake, bedrock_fake)


@pytest.fixture
def gateway(stack: Stack) -> Gateway:
    """The app on a real uvicorn, with no stored records yet; `saves` says when (and with what
    status) records were written."""
    dynamodb = boto3.client("dynamodb")
    keys = [{"pk": i["pk"], "sk": i["sk"]} for i in dynamodb.scan(TableName="chat-gateway").get("Items", [])]
    for start in range(0, len(keys), 25):
        requests = [{"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]]
        dynamodb.batch_write_item(RequestItems={"chat-gateway": requests})
    stack.gateway.saves.clear()
    return stack.gateway


@pytest.fixture
def openai_fake(stack: Stack) -> FakeOpenAI:
    stack.openai.reset()
    return stack.openai


@pytest.fixture
def bedrock_fake(stack: Stack) -> FakeBedrock:
    stack.bedrock.reset()
    return stack.bedrock


def project(name: str, models: dict[str, dict[str, Any]], default: str | None = None, **extra: Any) -> str:
    """Store a project config in the emulated SSM; returns its name."""
    put_project({"project": name, "default_model": default or next(iter(models)), "models": models, **extra})
    return name


def records() -> list[dict[str, Any]]:
    """The stored completion records (their JSON bodies), in index order."""
    bodies = [orjson.loads(item["body"]["S"]) for item in completion_items()]
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
