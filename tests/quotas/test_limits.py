"""Quotas through the real app on the emulated table: the 429 a client sees, who it hits, that it
holds under concurrency, and that a new window admits again. Time is injected (`Clock`), so that no
test depends on where the wall clock is in its minute.

Retry-After on a 429: RFC 9110 section 10.2.3; the openai SDK honours it (`retry-after` /
`retry-after-ms`, up to 60 s: openai-python `_base_client._calculate_retry_timeout`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from handler.completions.quotas import QuotaGate
from handler.config.models import Quotas
from handler.store.keys import DynamoKeyStore
from handler.store.quotas import DynamoQuotaStore
from tests.conftest import put_project
from tests.servers import serve_app

CHAT = "/api/v1/chat/completions"


class Clock:
    """The quotas' wall clock, moved by the test."""

    def __init__(self, start: str) -> None:
        self.t = datetime.fromisoformat(start).replace(tzinfo=UTC).timestamp()

    def __call__(self) -> float:
        return self.t

    def set(self, text: str) -> None:
        self.t = datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.fixture
def clock(aws: dict[str, str]) -> Clock:
    from handler import wiring

    clock = Clock("2026-12-02T05:30:10")
    wiring.default_service().quotas = QuotaGate(DynamoQuotaStore(aws["TABLE_NAME"]), clock)
    return clock


@pytest.fixture
def app(aws: dict[str, str], clock: Clock) -> Iterator[TestClient]:
    from handler.wiring import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as c:
        yield c


def key(table: str, project: str = "demo", **quotas: Any) -> dict[str, str]:
    _, secret = DynamoKeyStore(table).create([project], quotas=Quotas(**quotas) if quotas else None)
    return {"Authorization": f"Bearer {secret}"}


def ask(model: str = "demo", text: str = "hello there", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def test_the_sixth_request_in_a_minute_is_refused_and_another_key_is_not(
    app: TestClient, aws: dict[str, str], clock: Clock
) -> None:
    limited, other = (
        key(aws["TABLE_NAME"], requests_per_minute=5),
        key(aws["TABLE_NAME"], requests_per_minute=5),
    )
    for stream in (False, True, False, True, False):
        assert app.post(CHAT, json=ask(stream=stream), headers=limited).status_code == 200
    refused = app.post(CHAT, json=ask(stream=True), headers=limited)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "50"  # 05:30:10 -> the minute turns at 05:31:00
    error = refused.json()["error"]
    assert error["type"] == "rate_limit_error" and error["code"] == "quota_exceeded"
    assert "requests_per_minute (5)" in error["message"] and "2026-12-02T05:31:00Z" in error["message"]
    assert app.post(CHAT, json=ask(), headers=other).status_code == 200
    clock.set("2026-12-02T05:31:00")
    assert app.post(CHAT, json=ask(), headers=limited).status_code == 200


def test_a_project_limit_counts_every_key_of_the_project(app: TestClient, aws: dict[str, str]) -> None:
    put_project(
        {
            "project": "capped",
            "default_model": "m",
            "models": {"m": {"provider": "echo"}},
            "limits": {"requests_per_minute": 2},
        }
    )
    first, second = key(aws["TABLE_NAME"], "capped"), key(aws["TABLE_NAME"], "capped")
    assert app.post(CHAT, json=ask("capped"), headers=first).status_code == 200
    assert app.post(CHAT, json=ask("capped"), headers=second).status_code == 200
    refused = app.post(CHAT, json=ask("capped"), headers=first)
    assert refused.status_code == 429 and "project 'capped'" in refused.json()["error"]["message"]


def test_fifty_parallel_requests_against_rpm_20_admit_exactly_20(aws: dict[str, str], clock: Clock) -> None:
    from handler.wiring import create_app

    headers = key(aws["TABLE_NAME"], requests_per_minute=20)

    async def burst(url: str) -> list[int]:
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
            responses = await asyncio.gather(*(client.post(CHAT, json=ask()) for _ in range(50)))
        return [r.status_code for r in responses]

    with serve_app(create_app()) as url:
        statuses = asyncio.run(burst(url))
    assert statuses.count(200) == 20 and statuses.count(429) == 30


def test_tokens_per_day_refuses_the_request_after_the_one_that_crossed_it(
    app: TestClient, aws: dict[str, str], clock: Clock
) -> None:
    headers = key(aws["TABLE_NAME"], tokens_per_day=30)
    long_text = "many words " * 10  # well over 30 tokens: served (counted after), then the day is spent
    served = app.post(CHAT, json=ask(text=long_text), headers=headers)
    assert served.status_code == 200 and served.json()["usage"]["total_tokens"] > 30
    refused = app.post(CHAT, json=ask(), headers=headers)
    assert refused.status_code == 429
    assert "tokens_per_day (30)" in refused.json()["error"]["message"]
    assert refused.headers["retry-after"] == str(int(18.5 * 3600 - 10))  # to 2026-12-03T00:00:00Z
    clock.set("2026-12-03T00:00:01")
    assert app.post(CHAT, json=ask(), headers=headers).status_code == 200


def test_usd_per_month_refuses_once_the_month_is_spent_and_the_next_month_admits(
    app: TestClient, aws: dict[str, str], clock: Clock
) -> None:
    put_project(
        {
            "project": "paid",
            "default_model": "m",
            "models": {"m": {"provider": "echo", "prices": {"input": 1000, "output": 2000}}},
            "limits": {"usd_per_month": 0.01},
        }
    )
    headers = key(aws["TABLE_NAME"], "paid")
    # Streamed: charged when the stream ends, exactly as a JSON answer is.
    with app.stream(
        "POST", CHAT, json=ask("paid", text="one two three four five", stream=True), headers=headers
    ) as r:
        assert r.status_code == 200
        r.read()
    refused = app.post(CHAT, json=ask("paid"), headers=headers)
    assert refused.status_code == 429
    message = refused.json()["error"]["message"]
    assert "usd_per_month (0.01)" in message and "project 'paid'" in message
    assert "2027-01-01T00:00:00Z" in message
    clock.set("2027-01-01T00:00:00")
    assert app.post(CHAT, json=ask("paid"), headers=headers).status_code == 200


def test_the_openai_sdk_waits_retry_after_then_succeeds(aws: dict[str, str]) -> None:
    """The SDK's own retry: refused in the last second of a minute, it waits `Retry-After` and is
    admitted in the next minute; with max_retries=0 it raises RateLimitError naming the limit."""
    import boto3
    import openai

    from handler import wiring
    from handler.store.quotas import counter_key
    from handler.wiring import create_app

    at = datetime(2026, 12, 2, 5, 30, 59, 500_000, tzinfo=UTC).timestamp()
    moving: list[float] = []  # once set: time runs from `at`, from that monotonic instant

    def clock() -> float:
        return at + (time.monotonic() - moving[0]) if moving else at

    wiring.default_service().quotas = QuotaGate(DynamoQuotaStore(aws["TABLE_NAME"]), clock)
    table = aws["TABLE_NAME"]
    record, secret = DynamoKeyStore(table).create(["demo"], quotas=Quotas(requests_per_minute=1))
    hi = [{"role": "user", "content": "hi"}]
    with serve_app(create_app()) as url:
        client = openai.OpenAI(base_url=f"{url}/api/v1", api_key=secret, max_retries=0)
        client.chat.completions.create(model="demo", messages=hi)  # type: ignore[arg-type]
        with pytest.raises(openai.RateLimitError) as exc:
            client.chat.completions.create(model="demo", messages=hi)  # type: ignore[arg-type]
        assert "requests_per_minute" in str(exc.value)
        assert exc.value.response.headers["retry-after"] == "1"
        moving.append(time.monotonic())
        retrying = openai.OpenAI(base_url=f"{url}/api/v1", api_key=secret, max_retries=2)
        answer = retrying.chat.completions.create(model="demo", messages=hi)  # type: ignore[arg-type]
        assert answer.choices[0].message.content
    ddb = boto3.client("dynamodb")
    counted = {
        minute: ddb.get_item(TableName=table, Key=counter_key("key", record.key_id, "minute", minute))["Item"]
        for minute in ("2026-12-02T05:30", "2026-12-02T05:31")
    }
    # One admitted in each minute: the retry came after the window turned, not before.
    assert [int(item["requests"]["N"]) for item in counted.values()] == [1, 1]


class Counting:
    """A DynamoDB client that counts the calls made through it."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def call(**params: Any) -> Any:
            self.calls.append(name)
            return method(**params)

        return call


def test_admission_is_one_round_trip_for_every_limit_of_key_and_project(aws: dict[str, str]) -> None:
    """All four limits on the key and on the project: six counter items, one TransactWriteItems
    (admitted or refused); the charge after the answer is one more."""
    import boto3

    from handler.completions.quotas import QuotaExceeded, scope_of

    client = Counting(boto3.client("dynamodb"))
    gate = QuotaGate(DynamoQuotaStore(aws["TABLE_NAME"], client), lambda: 1_764_653_410.0)
    every = Quotas(requests_per_minute=1, tokens_per_minute=100, tokens_per_day=1000, usd_per_month=5)
    scopes = [scope_of("key", "k1", every), scope_of("project", "p", every)]
    gate.admit(scopes)
    assert client.calls == ["transact_write_items"]
    gate.charge(scopes, tokens=10, usd=0.01)
    assert client.calls == ["transact_write_items"] * 2
    with pytest.raises(QuotaExceeded, match=r"requests_per_minute \(1\) of API key k1"):
        gate.admit(scopes)
    assert client.calls == ["transact_write_items"] * 3
