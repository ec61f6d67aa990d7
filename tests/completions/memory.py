"""In-memory stand-ins for the store and config ports, for the read-side services' unit tests.

They keep what they are given and record what they are asked, so a test can say both what a
service answered and what it did (or did not) read and write on the way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from handler.config.models import ProjectConfig
from handler.errors import NotFound
from handler.store.errors import InvalidCursor
from handler.store.records import CompletionRecord
from handler.store.values import (
    CampaignCounters,
    CampaignState,
    Comparison,
    CompletionPage,
    CompletionQuery,
    Feedback,
    MetricStats,
    SessionOutcome,
    VariantStats,
)


def record(completion_id: str, project: str, session_id: str = "s-1", **fields: Any) -> CompletionRecord:
    return CompletionRecord(
        completion_id=completion_id,
        request_id=f"chatcmpl-{completion_id}",
        session_id=session_id,
        project=project,
        model=f"{project}/m",
        provider="echo",
        created=fields.pop("created", 1_700_000_000.0),
        **fields,
    )


def project(name: str, **fields: Any) -> ProjectConfig:
    return ProjectConfig.model_validate(
        {"project": name, "default_model": "m", "models": {"m": {"provider": "echo"}}, **fields}
    )


class MemoryStore:
    """Both store ports (`store.base.Store`) over dicts and lists."""

    def __init__(self, *records: CompletionRecord) -> None:
        self.records: dict[str, CompletionRecord] = {}
        self.feedback: list[Feedback] = []
        self.outcomes: list[SessionOutcome] = []
        self.stats: dict[str, list[VariantStats]] = {}
        self.comparisons: list[Comparison] = []
        self.states: dict[str, CampaignState] = {}
        self.queries: list[CompletionQuery] = []
        self.reads: list[tuple[str, str]] = []  # (method, key), in order
        self.unstored: list[CompletionRecord] = []  # what `count_usage` was given (not stored)
        self.put_completions(records)

    def put_completions(self, records: Sequence[CompletionRecord]) -> None:
        for r in records:
            self.records[r.completion_id] = r

    def count_usage(self, records: Sequence[CompletionRecord]) -> None:
        self.unstored.extend(records)

    def get_completion(self, completion_id: str) -> CompletionRecord | None:
        self.reads.append(("get_completion", completion_id))
        return self.records.get(completion_id)

    def list_session(self, project: str, session_id: str) -> list[CompletionRecord]:
        self.reads.append(("list_session", f"{project}#{session_id}"))
        return sorted(
            (r for r in self.records.values() if r.session_id == session_id and r.project == project),
            key=lambda r: r.created,
        )

    def session_projects(self, session_id: str) -> list[str]:
        self.reads.append(("session_projects", session_id))
        return sorted({r.project for r in self.records.values() if r.session_id == session_id})

    def query_completions(self, query: CompletionQuery) -> CompletionPage:
        self.queries.append(query)
        if query.cursor is not None:
            raise InvalidCursor("cursor: not a cursor this API returned")
        found = sorted(
            (r for r in self.records.values() if query.matches(r)), key=lambda r: r.created, reverse=True
        )
        return CompletionPage(found[: query.limit], None)

    def put_feedback(self, feedback: Feedback) -> None:
        self.feedback.append(feedback)

    def put_outcome(self, outcome: SessionOutcome) -> None:
        self.outcomes.append(outcome)

    def list_feedback(self, completion_id: str) -> list[Feedback]:
        self.reads.append(("list_feedback", completion_id))
        return sorted((f for f in self.feedback if f.completion_id == completion_id), key=lambda f: f.created)

    def campaign_stats(self, campaign_id: str) -> list[VariantStats]:
        self.reads.append(("campaign_stats", campaign_id))
        return list(self.stats.get(campaign_id, []))

    def put_comparison(self, comparison: Comparison) -> None:
        self.comparisons.append(comparison)

    def campaign_counters(self, campaign_id: str) -> CampaignCounters:
        self.reads.append(("campaign_counters", campaign_id))
        return CampaignCounters(
            variants=list(self.stats.get(campaign_id, [])), state=self.states.get(campaign_id)
        )

    def campaign_state(self, campaign_id: str) -> CampaignState | None:
        self.reads.append(("campaign_state", campaign_id))
        return self.states.get(campaign_id)

    def end_campaign(self, state: CampaignState) -> CampaignState:
        return self.states.setdefault(state.campaign_id, state)


def stats(variant: str, project: str, requests: int, **metrics: tuple[int, float]) -> VariantStats:
    """A variant's counters; `metrics` are feedback metrics, `oc_<name>` ones are outcomes."""
    feedback = {k: MetricStats(count=n, sum=s) for k, (n, s) in metrics.items() if not k.startswith("oc_")}
    outcomes = {k[3:]: MetricStats(count=n, sum=s) for k, (n, s) in metrics.items() if k.startswith("oc_")}
    return VariantStats(
        variant=variant,
        project=project,
        requests=requests,
        completions=requests,
        failures=0,
        feedback=feedback,
        outcomes=outcomes,
    )


class MemoryConfig:
    """The config port over a dict; an unknown project is the 404 `SSMConfigSource` raises."""

    def __init__(self, *projects: ProjectConfig) -> None:
        self.projects = {p.project: p for p in projects}
        self.reads: list[str] = []

    def project(self, name: str) -> ProjectConfig:
        self.reads.append(name)
        if name not in self.projects:
            raise NotFound(f"project {name!r} does not exist", param="model")
        return self.projects[name]

    def cached(self, name: str) -> ProjectConfig | None:
        return self.projects.get(name)

    def secret(self, name: str) -> str:
        raise KeyError(name)
