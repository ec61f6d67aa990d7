"""Issue #11 C10: an upstream that ignores `max_tokens` or never stops sending cannot make an
answer grow past what was asked for.

The gateway cuts the choice at `max_tokens` (counted with the providers' token counter) and every
answer at MAX_ANSWER_BYTES, ends it with `finish_reason: "length"` (what OpenAI reports for an
answer "cut off because max_tokens or the model's context was reached":
https://platform.openai.com/docs/api-reference/chat/object#chat/object-choices), stops reading the
upstream, and stores what the client got. JSON, SSE and batch lines share the one Answer lifecycle.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from handler.providers.tokens import count_tokens
from tests.conftest import table_items
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.reliability.test_upstream_faults import setup_project

pytestmark = pytest.mark.timeout(60)

CHAT = "/api/v1/chat/completions"
HI = [{"role": "user", "content": "hi"}]
# Far more than any budget below: an upstream that, for the client, never stops.
ENDLESS = Reply(chunks=[" word"] * 400_000, finish_reason="stop")


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(default=ENDLESS) as server:
        yield server


def stored() -> list[dict[str, Any]]:
    return [orjson.loads(i["body"]["S"]) for i in table_items() if i["sk"]["S"] == "COMPLETION"]


def test_max_tokens_is_enforced_when_the_upstream_ignores_it(
    module_client: TestClient, fake: FakeOpenAI
) -> None:
    setup_project(fake.base_url)
    r = module_client.post(CHAT, json={"model": "faulty", "messages": HI, "max_tokens": 10})
    assert r.status_code == 200, r.text[:300]
    assert fake.requests[-1].json()["max_tokens"] == 10  # it was asked, and ignored it
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "length"
    assert count_tokens(choice["message"]["content"]) == 10
    assert r.json()["usage"]["completion_tokens"] == 10
    (record,) = stored()
    assert record["status"] == "completed" and record["finish_reason"] == "length"
    assert record["content"] == choice["message"]["content"]


def test_a_streamed_answer_is_cut_at_max_tokens_too(module_client: TestClient, fake: FakeOpenAI) -> None:
    setup_project(fake.base_url)
    body = {"model": "faulty", "messages": HI, "max_tokens": 7, "stream": True}
    with module_client.stream("POST", CHAT, json=body) as r:
        lines = [line for line in r.iter_lines() if line.startswith("data: {")]
    chunks = [json.loads(line[6:]) for line in lines]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert count_tokens(text) == 7
    assert [f for f in finishes if f] == ["length"]


def test_an_answer_never_grows_past_max_answer_bytes(
    module_client: TestClient, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from handler import wiring
    from handler.settings import get_settings

    monkeypatch.setenv("MAX_ANSWER_BYTES", "65536")
    get_settings.cache_clear()
    wiring.reset()
    try:
        setup_project(fake.base_url)
        # Long words: 4096 tokens are far more bytes than the cap, so the byte cap is what cuts.
        fake.default = Reply(chunks=[" " + "x" * 60] * 400_000)
        r = module_client.post(CHAT, json={"model": "faulty", "messages": HI, "max_tokens": 4096, "n": 2})
    finally:
        monkeypatch.delenv("MAX_ANSWER_BYTES")
        get_settings.cache_clear()
        wiring.reset()
    assert r.status_code == 200, r.text[:300]
    choices = r.json()["choices"]
    assert sum(len(c["message"]["content"].encode()) for c in choices) <= 65536
    assert sum(len(c["message"]["content"].encode()) for c in choices) > 60000  # cut, not dropped
    assert {c["finish_reason"] for c in choices} == {"length"}
    assert len(stored()) == 2
