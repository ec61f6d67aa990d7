"""The store port. The completion service sees only this; DynamoDB lives behind it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from handler.store.records import CompletionRecord

if TYPE_CHECKING:
    from handler.store.feedback import Feedback, SessionOutcome, VariantStats
    from handler.store.queries import CompletionPage, CompletionQuery


class StoreError(Exception):
    """The store refused or failed a write or read."""


class CompletionStore(Protocol):
    def put_completions(self, records: Sequence[CompletionRecord]) -> None:
        """Write final records. Raises StoreError when they could not all be written."""

    def get_completion(self, completion_id: str) -> CompletionRecord | None: ...

    def list_session(self, session_id: str) -> list[CompletionRecord]:
        """A session's completions in the order they were created."""

    def put_feedback(self, feedback: Feedback) -> None:
        """Store feedback on a completion and add it to its campaign variant's counters."""

    def put_outcome(self, outcome: SessionOutcome) -> None:
        """Store a session outcome and add it to its campaign variants' counters."""

    def list_feedback(self, completion_id: str) -> list[Feedback]: ...

    def campaign_stats(self, campaign_id: str) -> list[VariantStats]: ...

    def query_completions(self, query: CompletionQuery) -> CompletionPage:
        """A page of a project's completions by label, tag, user and time (an index, not a scan)."""
