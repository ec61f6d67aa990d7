"""Issue #11 C9: a DynamoDB that accepts connections but never answers costs seconds, not minutes.

The store is a real TCP server on 127.0.0.1 that accepts and never answers, pointed at by
`AWS_ENDPOINT_URL_DYNAMODB` (botocore's per-service endpoint variable:
https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html). Every AWS client has a
connect and read timeout and a retry budget (botocore Config `connect_timeout`, `read_timeout`,
`retries={"total_max_attempts", "mode": "standard"}`:
https://botocore.amazonaws.com/v1/documentation/api/latest/reference/config.html), so an answered
completion's record goes to the retry queue after the budget, and reads answer 503 with
`Retry-After` (RFC 9110 section 10.2.3), not 500.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.conftest import AUTH
from tests.reliability.conftest import queued_messages

CHAT = "/api/v1/chat/completions"
# What "a few seconds at most" means for one store call: every attempt connecting and reading.
BUDGET_S = 10.0


class SilentServer:
    """Accepts TCP connections and holds them open without reading or answering."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.accepted = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def hung_dynamodb(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[SilentServer]:
    from handler import aws as aws_clients
    from handler import wiring
    from handler.settings import get_settings

    server = SilentServer()
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", f"http://127.0.0.1:{server.port}")
    # A short budget keeps the suite fast; the defaults' bound is held by the test above.
    monkeypatch.setenv("AWS_READ_TIMEOUT_S", "0.3")
    get_settings.cache_clear()
    aws_clients.reset_clients()
    wiring.reset()
    try:
        yield server
    finally:
        server.close()
        monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB")
        monkeypatch.delenv("AWS_READ_TIMEOUT_S")
        get_settings.cache_clear()
        aws_clients.reset_clients()
        wiring.reset()


def test_every_store_client_has_a_bounded_budget(aws: dict[str, str]) -> None:
    from handler import aws as aws_clients

    for service in ("dynamodb", "sqs", "ssm"):
        config = aws_clients.client(service).meta.config
        attempts = config.retries["total_max_attempts"]
        assert config.retries["mode"] == "standard"
        assert attempts * (config.connect_timeout + config.read_timeout) <= BUDGET_S, service


def test_an_answer_is_not_held_by_a_hung_store_and_its_record_is_queued(
    hung_dynamodb: SilentServer, aws: dict[str, str]
) -> None:
    from handler.wiring import create_app

    with TestClient(create_app(), raise_server_exceptions=False, headers=AUTH) as client:
        r = client.post(CHAT, json={"model": "demo", "messages": [{"role": "user", "content": "kept"}]})
    assert r.status_code == 200, r.text
    assert hung_dynamodb.accepted >= 1  # the store really was asked, and never answered
    queued = [json.loads(m["Body"]) for m in queued_messages(aws["STORE_RETRY_QUEUE_URL"])]
    assert r.json()["choices"][0]["completion_id"] in json.dumps(queued)


def test_reads_during_an_outage_answer_503_with_retry_after(hung_dynamodb: SilentServer) -> None:
    from handler.wiring import create_app

    with TestClient(create_app(), raise_server_exceptions=False, headers=AUTH) as client:
        for path in (
            "/api/v1/completions/0b6c2f4e-8a53-4ad4-9a29-8f1e7b0f6c11",
            "/api/v1/sessions/5f0e3c1a-2b4d-4c6e-8f10-223344556677",
            "/api/v1/projects/demo/completions",
            "/api/v1/completions/0b6c2f4e-8a53-4ad4-9a29-8f1e7b0f6c11/feedback",
            "/api/v1/projects/lab/ab_campaigns/tone/results",
        ):
            r = client.get(path)
            assert r.status_code == 503, (path, r.status_code, r.text)
            assert int(r.headers["Retry-After"]) >= 1
            assert r.json()["error"]["code"] == "store_unavailable"
