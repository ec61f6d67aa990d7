"""The counters' ports and value types: quota windows (store/quotas.py) and usage aggregates
(store/usage.py). Plain data, so the domain (completions/quotas.py, completions/usage.py) can speak
them without knowing DynamoDB."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

Window = Literal["minute", "day", "month"]
Counter = Literal["requests", "tokens", "usd"]
ScopeKind = Literal["key", "project"]


@dataclass(frozen=True)
class Scope:
    """A key or a project, and its limits by name (`requests_per_minute`...); absent: unlimited."""

    kind: ScopeKind
    id: str
    limits: dict[str, float]


@dataclass(frozen=True)
class WindowCheck:
    """One (scope, window) counter item: the limits on it, and whether admitting counts a request."""

    scope: Scope
    window: Window
    window_id: str
    resets_at: float  # unix seconds
    limits: dict[Counter, float]  # counter -> limit: admitted only while counter < limit
    count_request: bool


@dataclass(frozen=True)
class WindowCharge:
    """What an ended answer adds to one (scope, window) counter item."""

    scope: Scope
    window: Window
    window_id: str
    resets_at: float
    tokens: int
    usd: float


@dataclass(frozen=True)
class Refusal:
    """The check that did not hold, and which of its counters was at its limit."""

    check: WindowCheck
    counter: Counter


class QuotaStore(Protocol):
    def admit(self, checks: Sequence[WindowCheck]) -> Refusal | None:
        """Count the request on every check with `count_request` if every check holds, atomically
        and in one round trip; else change nothing and say which did not hold."""

    def charge(self, charges: Sequence[WindowCharge]) -> None:
        """Add tokens and spend to the counters (unconditionally)."""


@dataclass(frozen=True)
class UsageRow:
    """One aggregate counter: a project's usage on one UTC day, by one model, through one key."""

    day: str  # YYYY-MM-DD
    model: str  # "{project}/{model}", as the records name it
    key_id: str  # "-" when no key (a batch)
    requests: int = 0
    unstored_requests: int = 0  # of `requests`, those with `store: false`: counted, no records
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float = 0.0
    unpriced: int = 0  # records with no cost (their model has no prices)


class UsageStore(Protocol):
    """Usage aggregates, written with the records they count, or with the numbers alone of the
    records a request did not store (`DynamoCompletionStore`)."""

    def usage(self, project: str, first_day: str, last_day: str) -> list[UsageRow]:
        """The project's counters from `first_day` to `last_day` (inclusive): a Query, never a scan."""
