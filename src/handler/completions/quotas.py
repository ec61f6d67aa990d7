"""Quotas and prices: what a completion costs, and whether a key or a project may make another.

Four limits, each on a fixed window of UTC time: `requests_per_minute` and `tokens_per_minute` (the
minute), `tokens_per_day` (the day), `usd_per_month` (the calendar month). A request is admitted
before any model is called when, for the key and for the project, every counter is below its limit;
admitting it counts the request (one atomic, conditional write for all of them: `QuotaStore.admit`).
Tokens and spend are charged once the answer has ended (`QuotaStore.charge`), so a request that
crosses a token or spend limit is served, and the next one is refused until the window turns.

No boto3 here: the counters live behind `QuotaStore` (store/counting.py; store/quotas.py keeps
them in DynamoDB).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from handler.config.models import Limits, Prices, Quotas
from handler.errors import RateLimited
from handler.store.counting import (
    Counter,
    QuotaStore,
    Refusal,
    Scope,
    ScopeKind,
    Window,
    WindowCharge,
    WindowCheck,
)

#: Each limit: the window it counts over and the counter it bounds.
LIMITS: dict[str, tuple[Window, Counter]] = {
    "requests_per_minute": ("minute", "requests"),
    "tokens_per_minute": ("minute", "tokens"),
    "tokens_per_day": ("day", "tokens"),
    "usd_per_month": ("month", "usd"),
}


# --- prices ------------------------------------------------------------------------------------


def cost_usd(
    prices: Prices, prompt_tokens: int, completion_tokens: int, cache_read: int = 0, cache_write: int = 0
) -> float:
    """USD for these tokens; `prompt_tokens` include the cached ones, which have their own prices."""
    read_price = prices.input if prices.cache_read is None else prices.cache_read
    write_price = prices.input if prices.cache_write is None else prices.cache_write
    uncached = max(prompt_tokens - cache_read - cache_write, 0)
    total = (
        uncached * prices.input
        + cache_read * read_price
        + cache_write * write_price
        + completion_tokens * prices.output
    )
    return round(total / 1_000_000, 10)


# --- windows -----------------------------------------------------------------------------------


def window_of(window: Window, now: float) -> tuple[str, float]:
    """(the window's id, when it ends in unix seconds) for the fixed UTC window holding `now`."""
    moment = datetime.fromtimestamp(now, UTC)
    if window == "minute":
        start = moment.replace(second=0, microsecond=0)
        return start.strftime("%Y-%m-%dT%H:%M"), (start + timedelta(minutes=1)).timestamp()
    if window == "day":
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        return start.strftime("%Y-%m-%d"), (start + timedelta(days=1)).timestamp()
    start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start.strftime("%Y-%m"), following.timestamp()


# --- who is limited ------------------------------------------------------------------------------


def scope_of(kind: ScopeKind, id: str, quotas: Quotas | Limits | None) -> Scope:
    """A key's or a project's limits, the unset ones left out."""
    limits: dict[str, float] = {}
    if quotas is not None:
        for name in LIMITS:
            value = getattr(quotas, name)
            if value is not None:
                limits[name] = value
    return Scope(kind, id, limits)


class QuotaExceeded(RateLimited):
    """A limit was reached: 429 with `Retry-After` (seconds until its window turns)."""

    code = "quota_exceeded"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def checks_for(scopes: Sequence[Scope], now: float) -> list[WindowCheck]:
    """The counter items a request must find under their limits: one per limited (scope, window)."""
    checks: list[WindowCheck] = []
    for scope in scopes:
        by_window: dict[Window, dict[Counter, float]] = {}
        for name, limit in scope.limits.items():
            window, counter = LIMITS[name]
            by_window.setdefault(window, {})[counter] = limit
        for window, limits in by_window.items():
            window_id, resets_at = window_of(window, now)
            checks.append(WindowCheck(scope, window, window_id, resets_at, limits, "requests" in limits))
    return checks


def charges_for(scopes: Sequence[Scope], tokens: int, usd: float, now: float) -> list[WindowCharge]:
    """The counter items an ended answer is charged to: the token and spend windows that are limited."""
    charges: list[WindowCharge] = []
    for scope in scopes:
        windows: dict[Window, None] = {}
        for name in scope.limits:
            window, counter = LIMITS[name]
            if counter != "requests":
                windows[window] = None
        for window in windows:
            window_id, resets_at = window_of(window, now)
            charges.append(WindowCharge(scope, window, window_id, resets_at, tokens, usd))
    return charges


def _limit_name(window: Window, counter: Counter) -> str:
    return next(name for name, spec in LIMITS.items() if spec == (window, counter))


def refusal_error(refusal: Refusal, now: float) -> QuotaExceeded:
    """The 429: the limit, whose it is, its value, and when it resets."""
    check = refusal.check
    name = _limit_name(check.window, refusal.counter)
    limit = check.limits[refusal.counter]
    shown = f"{limit:g}" if refusal.counter == "usd" else str(int(limit))
    resets = datetime.fromtimestamp(check.resets_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    retry_after = max(1, int(check.resets_at - now + 0.999))
    whose = f"API key {check.scope.id}" if check.scope.kind == "key" else f"project {check.scope.id!r}"
    return QuotaExceeded(
        f"rate limit reached: {name} ({shown}) of {whose}; it resets at {resets} (in {retry_after} s)",
        retry_after,
    )


class QuotaGate:
    """Admits requests and charges answers against the key's and the project's limits."""

    def __init__(self, store: QuotaStore, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    @staticmethod
    def limited(scopes: Sequence[Scope]) -> bool:
        return any(scope.limits for scope in scopes)

    def admit(self, scopes: Sequence[Scope]) -> None:
        """Count the request, or raise QuotaExceeded when any limit is reached (nothing counted)."""
        now = self._clock()
        checks = checks_for(scopes, now)
        if not checks:
            return
        refusal = self._store.admit(checks)
        if refusal is not None:
            raise refusal_error(refusal, now)

    def charge(self, scopes: Sequence[Scope], tokens: int, usd: float) -> None:
        charges = charges_for(scopes, tokens, usd, self._clock())
        if charges:
            self._store.charge(charges)
