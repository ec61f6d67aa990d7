"""One typed settings object: every knob from the environment, batch ones included, bounds enforced."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from handler.settings import Settings, get_settings

pytestmark = pytest.mark.unit

BATCH_DEFAULTS = {
    "idempotency_table_name": "chat-gateway-idempotency",
    "batch_lines_per_message": 10,
    "batch_message_bytes": 192_000,
    "batch_inline_bytes": 48_000,
    "batch_concurrency": 32,
    "batch_send_threads": 16,
    "batch_max_receives": 5,
    "batch_result_ttl_days": 14,
    "idempotency_ttl_s": 7 * 86_400,
    "batch_assembly_lease_s": 900,
}


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_batch_knobs_are_settings_with_their_defaults() -> None:
    settings = Settings()
    assert {name: getattr(settings, name) for name in BATCH_DEFAULTS} == BATCH_DEFAULTS


def test_names_are_read_from_the_environment_in_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCH_LINES_PER_MESSAGE", "20")
    monkeypatch.setenv("idempotency_table_name", "idem")
    monkeypatch.setenv("TABLE_NAME", "t")
    settings = get_settings()
    assert (settings.batch_lines_per_message, settings.idempotency_table_name) == (20, "idem")
    assert settings.table_name == "t"
    assert get_settings() is settings  # parsed once


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BATCH_LINES_PER_MESSAGE", "51"),  # DynamoDB's 100 items per transaction
        ("BATCH_LINES_PER_MESSAGE", "0"),
        ("BATCH_MESSAGE_BYTES", "250000"),  # over SQS's 256 KiB with the attributes
        ("BATCH_INLINE_BYTES", "1000"),
        ("BATCH_CONCURRENCY", "257"),
        ("BATCH_SEND_THREADS", "65"),
        ("BATCH_MAX_RECEIVES", "0"),
        ("BATCH_RESULT_TTL_DAYS", "0"),
        ("IDEMPOTENCY_TTL_S", "59"),
        ("BATCH_ASSEMBLY_LEASE_S", "59"),
        ("BATCH_CONCURRENCY", "many"),
    ],
)
def test_a_value_out_of_bounds_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=name.lower()):
        get_settings()


@pytest.mark.parametrize(
    ("env", "disabled"),
    [
        ({}, False),
        ({"POWERTOOLS_DEV": "true"}, True),
        ({"POWERTOOLS_DEV": " TRUE "}, True),
        ({"POWERTOOLS_DEV": "1", "POWERTOOLS_METRICS_DISABLED": "false"}, False),  # the explicit switch wins
        ({"POWERTOOLS_DEV": "false", "POWERTOOLS_METRICS_DISABLED": "yes"}, True),
        ({"POWERTOOLS_METRICS_DISABLED": "0"}, False),
    ],
)
def test_metrics_follow_powertools_rule(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    disabled: bool,
) -> None:
    from handler.observability import record_completion

    for name in ("POWERTOOLS_DEV", "POWERTOOLS_METRICS_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert get_settings().metrics_disabled is disabled
    record_completion("p", "m", "completed", 1.0, 2.0, prompt_tokens=1, completion_tokens=1)
    written = [line for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert len(written) == (0 if disabled else 1)


def test_the_batch_runtime_reads_the_same_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from handler.batch.runtime import Runtime

    monkeypatch.setenv("BATCH_LINES_PER_MESSAGE", "7")
    monkeypatch.setenv("BATCH_RESULT_TTL_DAYS", "3")
    settings = get_settings()

    def no_service() -> None:
        raise AssertionError("not called")

    rt = Runtime(settings, no_service)  # type: ignore[arg-type]
    assert rt.splitter.settings is settings
    assert rt.splitter.settings.batch_lines_per_message == 7
    assert rt.table._ttl_s == 3 * 86_400
