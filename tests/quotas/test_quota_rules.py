"""The quota and price rules themselves, without AWS: windows, costs, the refusal's wording, and
what a project config or key accepts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from handler.completions.quotas import (
    QuotaExceeded,
    QuotaGate,
    checks_for,
    cost_usd,
    refusal_error,
    scope_of,
    window_of,
)
from handler.config.models import Prices, ProjectConfig, Quotas
from handler.store.counting import Refusal, WindowCharge, WindowCheck

pytestmark = pytest.mark.unit


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_windows_are_fixed_utc_minutes_days_and_months() -> None:
    now = ts("2026-12-31T23:59:30")
    assert window_of("minute", now) == ("2026-12-31T23:59", ts("2027-01-01T00:00:00"))
    assert window_of("day", now) == ("2026-12-31", ts("2027-01-01T00:00:00"))
    assert window_of("month", now) == ("2026-12", ts("2027-01-01T00:00:00"))
    assert window_of("month", ts("2026-02-10T00:00:00")) == ("2026-02", ts("2026-03-01T00:00:00"))


def test_cost_prices_cached_tokens_apart_and_defaults_them_to_the_input_price() -> None:
    prices = Prices(input=3.0, output=15.0, cache_read=0.3, cache_write=3.75)
    # 1000 prompt tokens of which 400 read from the cache and 100 written to it; 200 out.
    assert cost_usd(prices, 1000, 200, 400, 100) == pytest.approx(
        (500 * 3.0 + 400 * 0.3 + 100 * 3.75 + 200 * 15.0) / 1e6
    )
    assert cost_usd(Prices(input=2.0, output=4.0), 1000, 10, 400) == pytest.approx((1000 * 2 + 10 * 4) / 1e6)


def test_prices_and_limits_are_validated_with_the_field_named() -> None:
    base = {"project": "p", "default_model": "m"}
    with pytest.raises(ValidationError) as exc:
        ProjectConfig.model_validate(
            {**base, "models": {"m": {"provider": "echo", "prices": {"input": -1, "output": 1}}}}
        )
    assert "prices.input" in str(exc.value)
    with pytest.raises(ValidationError) as exc:
        ProjectConfig.model_validate({**base, "models": {"m": {"provider": "echo", "prices": {"input": 1}}}})
    assert "prices.output" in str(exc.value)
    with pytest.raises(ValidationError) as exc:
        ProjectConfig.model_validate(
            {**base, "models": {"m": {"provider": "echo"}}, "limits": {"requests_per_minute": 0}}
        )
    assert "limits.requests_per_minute" in str(exc.value)
    with pytest.raises(ValidationError) as exc:
        Quotas.model_validate({"usd_per_month": -5})
    assert "usd_per_month" in str(exc.value)


def test_one_check_per_limited_window_and_requests_counted_only_where_limited() -> None:
    now = ts("2026-12-02T05:30:10")
    key = scope_of("key", "k1", Quotas(requests_per_minute=5, tokens_per_day=1000))
    project = scope_of("project", "p", Quotas(usd_per_month=10))
    checks = checks_for([key, project], now)
    assert [(c.scope.id, c.window, c.limits, c.count_request) for c in checks] == [
        ("k1", "minute", {"requests": 5}, True),
        ("k1", "day", {"tokens": 1000}, False),
        ("p", "month", {"usd": 10}, False),
    ]
    assert checks_for([scope_of("key", "k", None)], now) == []


def test_the_refusal_names_the_limit_whose_it_is_and_when_it_resets() -> None:
    now = ts("2026-12-02T05:30:10")
    [check] = checks_for([scope_of("key", "k1", Quotas(requests_per_minute=5))], now)
    error = refusal_error(Refusal(check, "requests"), now)
    assert error.status == 429 and error.retry_after_s == 50
    assert "requests_per_minute (5)" in error.message and "API key k1" in error.message
    assert "2026-12-02T05:31:00Z" in error.message


class Recording:
    def __init__(self, refuse: bool) -> None:
        self.refuse = refuse
        self.admitted: list[list[WindowCheck]] = []
        self.charged: list[list[WindowCharge]] = []

    def admit(self, checks: list[WindowCheck]) -> Refusal | None:
        self.admitted.append(list(checks))
        return Refusal(checks[0], "tokens") if self.refuse else None

    def charge(self, charges: list[WindowCharge]) -> None:
        self.charged.append(list(charges))


def test_the_gate_asks_nothing_of_the_store_without_limits_and_charges_only_token_windows() -> None:
    store = Recording(refuse=False)
    gate = QuotaGate(store, clock=lambda: ts("2026-12-02T05:30:10"))
    gate.admit([scope_of("key", "k", None), scope_of("project", "p", None)])
    assert store.admitted == []
    limited = [scope_of("key", "k", Quotas(requests_per_minute=3, tokens_per_minute=100))]
    gate.charge(limited, tokens=42, usd=0.5)
    [[charge]] = store.charged
    assert (charge.window, charge.tokens, charge.usd) == ("minute", 42, 0.5)
    refusing = QuotaGate(Recording(refuse=True), clock=lambda: ts("2026-12-02T05:30:10"))
    with pytest.raises(QuotaExceeded, match="tokens_per_minute"):
        refusing.admit(limited)
