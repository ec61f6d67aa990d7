"""The store port. The completion service sees only this; DynamoDB lives behind it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from handler.store.records import CompletionRecord


class StoreError(Exception):
    """The store refused or failed a write or read."""


class CompletionStore(Protocol):
    def put_completions(self, records: Sequence[CompletionRecord]) -> None:
        """Write final records. Raises StoreError when they could not all be written."""

    def get_completion(self, completion_id: str) -> CompletionRecord | None: ...

    def list_session(self, session_id: str) -> list[CompletionRecord]:
        """A session's completions in the order they were created."""
