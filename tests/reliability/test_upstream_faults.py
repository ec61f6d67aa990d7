"""Upstream faults against a real local OpenAI-compatible server: drops, stalls, 429 storms, 5xx,
garbage. Whatever the upstream does: never a 500, never past the deadline, a clear 502/504 that
leaks no URL, key or trace, and a stored record of every request that was answered (or not).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from tests.conftest import AUTH, put_project, table_items
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.servers import serve_app

pytestmark = pytest.mark.timeout(60)

CHAT = "/api/v1/chat/completions"
KEY = "sk-upstream-FAULTS-0123456789abcdef"
KEY_PARAM = "/chat-gateway/secrets/faulty-upstream"
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"  # nothing listens here once the socket is closed


def setup_project(base_url: str, *, fallback: bool = False, retries: int = 2, **model: Any) -> None:
    boto3.client("ssm").put_parameter(Name=KEY_PARAM, Value=KEY, Type="SecureString", Overwrite=True)
    up: dict[str, Any] = {
        "provider": "openai",
        "base_url": base_url,
        "model": "up-model",
        "api_key_param": KEY_PARAM,
        "max_retries": retries,
        **model,
    }
    models: dict[str, Any] = {"up": up}
    if fallback:
        up["fallbacks"] = ["backup"]
        models["backup"] = {"provider": "echo", "prefix": "backup: "}
    put_project({"project": "faulty", "default_model": "up", "models": models})


@pytest.fixture
def warm(module_client: TestClient) -> TestClient:
    """Served once already: deadlines below count from arrival, and a cold start would eat them."""
    r = module_client.post(CHAT, json={"model": "demo", "messages": HI, "store": False})
    assert r.status_code == 200
    return module_client


def completions() -> list[dict[str, Any]]:
    return [orjson.loads(i["body"]["S"]) for i in table_items() if i["sk"]["S"] == "COMPLETION"]


def assert_clean_error(response: httpx.Response, status: int, code: str, base_url: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code, error
    text = response.text
    for leak in (KEY, base_url, "127.0.0.1", "localhost", "Traceback", 'File "', "httpx", KEY_PARAM):
        assert leak not in text, (leak, text)
    return error


def post(client: TestClient, **fields: Any) -> httpx.Response:
    """Timings are read from the record (the gateway's own clock from arrival), not around the
    client: on a loaded machine the test client's side adds a second and more."""
    return client.post(CHAT, json={"model": "faulty", "messages": HI, **fields})


# --- retried, then answered ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "faults",
    [
        [Reply(status=429, headers={"Retry-After": "0"}), Reply(status=429)],
        [Reply(status=500), Reply(status=503)],
        [Reply(status=502, body=b"<html>Bad Gateway</html>", content_type="text/html")],
        [Reply(drop_after=0)],
        [Reply(body=b"", status=200)],
    ],
    ids=["429-twice", "500-then-503", "502-html", "dropped-before-first-token", "empty-200"],
)
def test_retryable_faults_before_the_first_token_are_retried_then_answered(
    warm: TestClient, fake: FakeOpenAI, faults: list[Reply]
) -> None:
    setup_project(fake.base_url)
    fake.enqueue(*faults)
    r = post(warm)
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "Hello from the fake model."
    assert len(fake.requests) == len(faults) + 1
    assert all(req.headers["authorization"] == f"Bearer {KEY}" for req in fake.requests)
    (record,) = completions()
    assert record["status"] == "completed" and record["content"] == "Hello from the fake model."
    assert [a["outcome"] for a in record["attempts"]] == ["error"] * len(faults) + ["ok"]
    assert record["duration_ms"] < 5000  # backoff is bounded (Retry-After: 0 is taken at its word)


# --- given up on: a clear 502 / 504 -------------------------------------------------------------


@pytest.mark.parametrize(
    ("default", "requests", "detail"),
    [
        (Reply(status=429, error="Rate limit reached"), 3, "HTTP 429"),
        (Reply(status=503, error="overloaded"), 3, "HTTP 503"),
        (Reply(status=400, error="bad request"), 1, "HTTP 400"),
        (Reply(status=401, error=f"Incorrect API key provided: {KEY}"), 1, "HTTP 401"),
        (Reply(status=500, error="internal error at {url} with key {key}"), 3, "HTTP 500"),
        (
            Reply(status=200, body=b"<html><body>Welcome to nginx</body></html>", content_type="text/html"),
            1,
            "malformed",
        ),
        (Reply(status=200, body=b"data: {not json\n\n"), 1, "malformed"),
        (Reply(status=200, body=b'data: ["a list"]\n\n'), 1, "malformed"),
        (Reply(status=200, body=b'data: {"choices": "nope"}\n\n'), 1, "malformed"),
        (
            Reply(status=200, body=b"\x00\xff\xfe garbage \x89PNG", content_type="application/octet-stream"),
            1,
            "malformed",
        ),
        (Reply(drop_after=0), 3, "connection failed"),
        (Reply(body=b"", status=200), 3, "ended early"),
    ],
    ids=[
        "429-storm",
        "503-storm",
        "400",
        "401-echoing-the-key",
        "500-echoing-url-and-key",
        "html-200",
        "bad-json-chunk",
        "chunk-not-object",
        "choices-not-list",
        "binary-garbage",
        "drops",
        "empty-bodies",
    ],
)
def test_faults_that_persist_are_a_clear_502(
    warm: TestClient, fake: FakeOpenAI, default: Reply, requests: int, detail: str
) -> None:
    if "{url}" in default.error:
        default.error = default.error.format(url=fake.base_url, key=KEY)
    fake.default = default
    setup_project(fake.base_url)
    r = post(warm)
    error = assert_clean_error(r, 502, "upstream_error", fake.base_url)
    assert detail in error["message"]
    assert "'up-model'" in error["message"]  # which model failed, but not where it lives
    assert len(fake.requests) == requests  # retried only when it may help: 1 + max_retries
    (record,) = completions()  # the failure is on record too
    assert record["duration_ms"] < 5000  # backoff between the retries is bounded
    assert record["status"] == "failed"
    assert len(record["attempts"]) == requests
    assert KEY not in orjson.dumps(record).decode() and fake.base_url not in orjson.dumps(record).decode()


def test_an_upstream_nobody_listens_on_is_a_502_after_retries(warm: TestClient) -> None:
    url = closed_port_url()
    setup_project(url)
    r = post(warm)
    error = assert_clean_error(r, 502, "upstream_error", url)
    assert "could not connect" in error["message"]
    (record,) = completions()
    assert record["duration_ms"] < 5000
    assert [a["outcome"] for a in record["attempts"]] == ["error"] * 3


def test_a_drop_after_the_first_token_is_a_502_and_is_not_retried(warm: TestClient, fake: FakeOpenAI) -> None:
    fake.default = Reply(text="one two three four", drop_after=2)
    setup_project(fake.base_url)
    r = post(warm)
    assert_clean_error(r, 502, "upstream_error", fake.base_url)
    assert len(fake.requests) == 1  # the answer had begun: a retry would repeat it
    (record,) = completions()
    assert record["status"] == "failed"
    assert record["content"] == "one two"  # what was produced is kept


def test_a_mid_stream_error_event_is_a_502(warm: TestClient, fake: FakeOpenAI) -> None:
    fake.default = Reply(text="partial", stream_error=f"engine crashed at {fake.base_url}")
    setup_project(fake.base_url)
    r = post(warm)
    assert_clean_error(r, 502, "upstream_error", fake.base_url)


# --- stalls: the deadline holds -----------------------------------------------------------------


def test_a_stalled_upstream_is_a_504_at_the_deadline_and_is_hung_up_on(
    warm: TestClient, fake: FakeOpenAI
) -> None:
    fake.default = Reply(stall=True)
    setup_project(fake.base_url)
    r = post(warm, max_ttft_ms=400)
    error = assert_clean_error(r, 504, "ttft_exceeded", fake.base_url)
    assert "max_ttft_ms" in error["message"]
    assert fake.disconnected.wait(2)  # the upstream call was closed, not left running
    (record,) = completions()
    assert record["status"] == "ttft_exceeded"
    assert 390 <= record["duration_ms"] < 1500  # given up at the deadline, not before


def test_a_stalled_upstream_falls_back_within_the_deadline(warm: TestClient, fake: FakeOpenAI) -> None:
    fake.default = Reply(stall=True)
    setup_project(fake.base_url, fallback=True, max_ttft_ms=300)  # the model's own window
    r = post(warm)
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "faulty/backup"
    assert r.json()["choices"][0]["message"]["content"] == "backup: hi"
    assert fake.disconnected.wait(2)  # the stalled call was hung up on
    (record,) = completions()
    stalled, answered = record["attempts"]
    assert (stalled["outcome"], answered["outcome"]) == ("ttft_exceeded", "ok")
    assert 290 <= stalled["duration_ms"] < 1000  # the model's own 300 ms window, then the fallback


def test_a_429_storm_falls_back_to_the_next_model(warm: TestClient, fake: FakeOpenAI) -> None:
    fake.default = Reply(status=429)
    setup_project(fake.base_url, fallback=True)
    r = post(warm)
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "faulty/backup"
    assert len(fake.requests) == 3


def test_retries_never_outlast_the_deadline(warm: TestClient, fake: FakeOpenAI) -> None:
    fake.default = Reply(status=503, delay_headers_s=0.15)
    setup_project(fake.base_url, retries=10)
    r = post(warm, max_ttft_ms=500)
    assert r.status_code in (502, 504), r.text
    assert_clean_error(r, r.status_code, r.json()["error"]["code"], fake.base_url)
    # Each attempt holds 150 ms before its 503: 500 ms has room for 4 starts, not the 11 allowed.
    assert len(fake.requests) <= 4
    (record,) = completions()
    assert record["duration_ms"] < 1000  # all 11 would take 1.65 s and more


def test_a_stall_without_a_deadline_ends_at_the_models_timeout(warm: TestClient, fake: FakeOpenAI) -> None:
    fake.default = Reply(stall=True)
    setup_project(fake.base_url, retries=1, timeout_s=0.3)
    r = post(warm)
    error = assert_clean_error(r, 504, "upstream_timeout", fake.base_url)
    assert "timed out" in error["message"]
    assert len(fake.requests) == 2
    (record,) = completions()
    assert all(290 <= a["duration_ms"] < 1500 for a in record["attempts"])  # timeout_s=0.3 each


# --- streaming, on a real server --------------------------------------------------------------------


@pytest.fixture
def gateway(clean_aws: dict[str, str]) -> Iterator[str]:
    from handler.wiring import create_app

    with serve_app(create_app()) as url:
        with httpx.Client(base_url=url, headers=AUTH, timeout=10) as http:
            assert http.post(CHAT, json={"model": "demo", "messages": HI, "store": False}).status_code == 200
        yield url


def stream(url: str, **fields: Any) -> tuple[int, str, str]:
    body = {"model": "faulty", "messages": HI, "stream": True, **fields}
    with (
        httpx.Client(base_url=url, headers=AUTH, timeout=10) as http,
        http.stream("POST", CHAT, json=body) as r,
    ):
        text = "".join(r.iter_text())
        return r.status_code, r.headers.get("content-type", ""), text


@pytest.mark.parametrize(
    ("reply", "fields", "status", "code"),
    [
        (Reply(status=429), {}, 502, "upstream_error"),
        (Reply(status=200, body=b"<html>oops</html>", content_type="text/html"), {}, 502, "upstream_error"),
        (Reply(stall=True), {"max_ttft_ms": 400}, 504, "ttft_exceeded"),
    ],
    ids=["429-storm", "garbage", "stall"],
)
def test_streamed_requests_get_a_real_status_before_any_event(
    gateway: str, fake: FakeOpenAI, reply: Reply, fields: dict[str, Any], status: int, code: str
) -> None:
    fake.default = reply
    setup_project(fake.base_url)
    got, content_type, text = stream(gateway, **fields)
    assert got == status, text
    assert content_type.startswith("application/json")
    assert orjson.loads(text)["error"]["code"] == code
    for leak in (KEY, fake.base_url, "Traceback"):
        assert leak not in text


def test_a_stream_dropped_mid_answer_ends_with_an_error_event_and_is_recorded(
    gateway: str, fake: FakeOpenAI
) -> None:
    fake.default = Reply(text="one two three four", drop_after=2)
    setup_project(fake.base_url)
    status, content_type, text = stream(gateway)
    assert status == 200 and content_type.startswith("text/event-stream")
    assert "one" in text and '"error"' in text
    for leak in (KEY, fake.base_url, "Traceback"):
        assert leak not in text
    deadline = time.monotonic() + 5
    while not completions() and time.monotonic() < deadline:  # the record is written after the stream
        time.sleep(0.02)
    (record,) = completions()
    assert record["status"] == "failed" and record["content"] == "one two"
