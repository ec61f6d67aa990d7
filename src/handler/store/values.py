"""The store's value types besides the completion record (records.py): feedback, session outcomes,
campaign results, and a completion listing's query and page. Plain data: how they are kept is the
adapters' business (feedback.py, queries.py)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from handler.store.records import CompletionRecord


class Feedback(BaseModel):
    feedback_id: str
    completion_id: str
    project: str
    metric: str
    value: float
    reason: str | None = None
    details: Any = None  # whatever JSON the client sent
    user_id: str | None = None
    created: float
    campaign: str | None = None
    variant: str | None = None


class SessionOutcome(BaseModel):
    outcome_id: str
    session_id: str
    project: str
    metric: str
    value: float
    user_id: str | None = None
    created: float
    #: The (campaign id, variant) pairs the session's stored completions were served under.
    campaigns: list[tuple[str, str]] = []


class MetricStats(BaseModel):
    count: int
    sum: float
    sum_sq: float = 0.0  # sum of squares: with count and sum, the variance
    non_binary: int = 0  # how many values were not exactly 0 or 1 (0: a rate, tested as one)

    @property
    def mean(self) -> float | None:
        return self.sum / self.count if self.count else None


class VariantStats(BaseModel):
    variant: str
    project: str | None = None
    requests: int = 0
    completions: int = 0
    failures: int = 0
    feedback: dict[str, MetricStats] = {}
    outcomes: dict[str, MetricStats] = {}


class Comparison(BaseModel):
    """A preference between two completions on a metric (`tied`: neither preferred)."""

    comparison_id: str
    project: str
    metric: str
    preferred_completion: str
    other_completion: str
    tied: str | None = None  # None | "good" | "bad"
    user_id: str | None = None
    created: float
    campaign: str | None = None  # set when both completions were served by one campaign
    preferred_variant: str | None = None
    other_variant: str | None = None


class PairStats(BaseModel):
    """Preferences between variants `a` and `b` (a < b) on a metric: a's wins, losses and ties."""

    a: str
    b: str
    metric: str
    wins: int = 0
    losses: int = 0
    ties: int = 0


class CampaignState(BaseModel):
    """What the gateway decided about a campaign (the config in SSM is read-only at runtime)."""

    campaign_id: str
    status: str = "completed"
    winner: str | None = None
    reason: str = ""
    ended: float = 0.0


class CampaignCounters(BaseModel):
    """One read of a campaign's partition: its variants' counters, preference pairs and state."""

    variants: list[VariantStats] = []
    pairs: list[PairStats] = []
    state: CampaignState | None = None


def session_campaigns(records: Iterable[CompletionRecord]) -> list[tuple[str, str]]:
    """The distinct (campaign, variant) pairs of a session's records, in order of first use."""
    seen = dict.fromkeys((r.campaign, r.variant) for r in records if r.campaign and r.variant)
    return [(c, v) for c, v in seen if c and v]


@dataclass(frozen=True)
class CompletionQuery:
    project: str
    labels: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    user: str | None = None
    since: float | None = None  # unix seconds, inclusive
    until: float | None = None  # unix seconds, exclusive
    limit: int = 20
    cursor: str | None = None

    def matches(self, record: CompletionRecord) -> bool:
        return (
            record.project == self.project
            and (self.user is None or record.user == self.user)
            and all(record.labels.get(k) == v for k, v in self.labels.items())
            and all(t in record.tags for t in self.tags)
        )


@dataclass
class CompletionPage:
    records: list[CompletionRecord]
    next_cursor: str | None
