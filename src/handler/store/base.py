"""The store's ports, one per concern. The completion service and the routes see only these;
DynamoDB lives behind them (dynamodb.py implements both).

Every method raises `StoreError` (errors.py) when the backend fails it; `query_completions` raises
`InvalidCursor` for a cursor it did not make.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from handler.store.records import CompletionRecord
from handler.store.values import (
    CampaignCounters,
    CampaignState,
    Comparison,
    CompletionPage,
    CompletionQuery,
    Feedback,
    SessionOutcome,
    VariantStats,
)


class CompletionStore(Protocol):
    def put_completions(self, records: Sequence[CompletionRecord]) -> None:
        """Write final records, and add them to the usage counters (once per request: writing the
        same records again counts nothing). Raises StoreError when they could not all be written."""

    def count_usage(self, records: Sequence[CompletionRecord]) -> None:
        """Add the records of a request that does not store them to the usage counters, as not
        stored: their numbers only, never their content; once per request. Raises StoreError."""

    def get_completion(self, completion_id: str) -> CompletionRecord | None: ...

    def list_session(self, project: str, session_id: str) -> list[CompletionRecord]:
        """A project's session's completions in the order they were created (sessions belong to a
        project: the same id in another project is another session)."""

    def session_projects(self, session_id: str) -> list[str]:
        """The projects that hold a session of this id, by name (an index, not a scan)."""

    def query_completions(self, query: CompletionQuery) -> CompletionPage:
        """A page of a project's completions by label, tag, user and time (an index, not a scan)."""


class FeedbackStore(Protocol):
    def put_feedback(self, feedback: Feedback) -> None:
        """Store feedback on a completion and add it to its campaign variant's counters."""

    def put_outcome(self, outcome: SessionOutcome) -> None:
        """Store a session outcome and add it to its campaign variants' counters."""

    def list_feedback(self, completion_id: str) -> list[Feedback]: ...

    def campaign_stats(self, campaign_id: str) -> list[VariantStats]: ...

    def put_comparison(self, comparison: Comparison) -> None:
        """Store a preference and add it to its campaign pair's counters (once per id)."""

    def campaign_counters(self, campaign_id: str) -> CampaignCounters:
        """A campaign's variant counters, preference pairs and state, in one read."""


class CampaignStateStore(Protocol):
    """The gateway's decisions about campaigns (SSM config is read-only at runtime)."""

    def campaign_state(self, campaign_id: str) -> CampaignState | None: ...

    def end_campaign(self, state: CampaignState) -> CampaignState:
        """Record the end unless one is recorded; the state that stands."""


class Store(CompletionStore, FeedbackStore, CampaignStateStore, Protocol):
    """Both concerns in one (what the completion service holds, for its routes)."""
