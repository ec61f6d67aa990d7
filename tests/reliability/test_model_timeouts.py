"""Issue #11 C11: every model call is bounded in time, configured or not.

A model with no deadline settings gets the defaults (MODEL_FIRST_BYTE_TIMEOUT_S,
MODEL_IDLE_TIMEOUT_S; per model `timeouts: {connect_s, first_byte_s, idle_s}`), and no answer waits
past the function's own timeout (FUNCTION_TIMEOUT_S less DEADLINE_MARGIN_S; Lambda stops a function
at its configured timeout: https://docs.aws.amazon.com/lambda/latest/dg/configuration-timeout.html).
Each case answers 504 and stores what happened. The budgets are made short through the settings
so that the suite stays fast; the upstream would otherwise hold the request for minutes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from handler.config.models import ProjectConfig
from tests.conftest import table_items
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.reliability.test_upstream_faults import setup_project

pytestmark = pytest.mark.timeout(60)

CHAT = "/api/v1/chat/completions"
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    from handler import wiring
    from handler.settings import get_settings

    def apply() -> None:
        get_settings.cache_clear()
        wiring.reset()

    monkeypatch.setattr(monkeypatch, "apply", apply, raising=False)
    yield monkeypatch
    monkeypatch.undo()
    apply()


def stored() -> list[dict[str, Any]]:
    return [orjson.loads(i["body"]["S"]) for i in table_items() if i["sk"]["S"] == "COMPLETION"]


def test_a_stalled_upstream_with_no_deadline_settings_gets_the_default_first_byte_timeout(
    module_client: TestClient, fake: FakeOpenAI, settings: pytest.MonkeyPatch
) -> None:
    settings.setenv("MODEL_FIRST_BYTE_TIMEOUT_S", "0.5")
    settings.apply()  # type: ignore[attr-defined]
    setup_project(fake.base_url, retries=0)  # no max_ttft_ms anywhere
    fake.default = Reply(stall=True)
    r = module_client.post(CHAT, json={"model": "faulty", "messages": HI})
    assert r.status_code == 504, r.text
    (record,) = stored()
    assert record["status"] in ("failed", "ttft_exceeded")


def test_an_upstream_that_goes_quiet_mid_answer_hits_the_idle_timeout(
    module_client: TestClient, fake: FakeOpenAI
) -> None:
    setup_project(fake.base_url, retries=0, timeouts={"idle_s": 0.5})
    fake.default = Reply(text="first then nothing", hold=True)
    r = module_client.post(CHAT, json={"model": "faulty", "messages": HI})
    fake.release()
    assert r.status_code == 504, r.text
    assert r.json()["error"]["code"] == "upstream_timeout"
    (record,) = stored()
    assert record["status"] == "failed" and record["content"] == "first"  # the partial text is kept


def test_no_answer_outlives_the_function(
    module_client: TestClient, fake: FakeOpenAI, settings: pytest.MonkeyPatch
) -> None:
    settings.setenv("FUNCTION_TIMEOUT_S", "4")
    settings.setenv("DEADLINE_MARGIN_S", "3")
    settings.apply()  # type: ignore[attr-defined]
    setup_project(fake.base_url, retries=0)
    # Never idle long, never done: a chunk every 50 ms, for far longer than the function may run.
    fake.default = Reply(chunks=[" tick"] * 100_000, delay_s=0.05)
    with module_client.stream("POST", CHAT, json={"model": "faulty", "messages": HI, "stream": True}) as r:
        text = "".join(r.iter_text())
    assert r.status_code == 200
    assert "upstream_timeout" in text  # the stream ends with an error event, not a cut connection
    (record,) = stored()
    assert record["status"] == "failed" and record["content"].startswith(" tick")


def test_timeouts_are_checked_in_the_config() -> None:
    base = {"project": "p", "default_model": "m"}
    model = {"provider": "openai", "base_url": "http://up", "model": "x"}
    config = ProjectConfig.model_validate({**base, "models": {"m": {**model, "timeouts": {"idle_s": 5}}}})
    assert config.models["m"].timeouts.idle_s == 5
    for bad in ({"idle_s": 0}, {"idle": 5}, {"connect_s": 120}):
        with pytest.raises(ValidationError, match="timeouts"):
            ProjectConfig.model_validate({**base, "models": {"m": {**model, "timeouts": bad}}})
