"""Feedback on completions and outcomes of sessions: what A/B results are computed from.

Feedback is attached to a stored completion, so it is refused for a completion the caller may not
read; it counts toward the campaign variant that served the completion. An outcome names its
project and session: the project is checked (404 when unknown or not the caller's), the session need
not be stored (a `store: false` session, or one not written yet), and the outcome counts toward the
campaigns of that project's session (sessions belong to a project; another project's session of the
same id is another session).

A value is a number, or a boolean stored as 1 or 0, so that its mean is a rate.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

from handler.completions.access import open_completion, open_project
from handler.completions.caller import Caller
from handler.config.source import ConfigSource
from handler.store.base import Store
from handler.store.values import Feedback, SessionOutcome, session_campaigns


def _new_id() -> str:
    return str(uuid.uuid4())


class FeedbackService:
    """Writes and reads feedback and outcomes for a caller. `clock` and `new_id` are for tests."""

    def __init__(
        self,
        store: Store,
        config: ConfigSource,
        *,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = _new_id,
    ) -> None:
        self._store = store
        self._config = config
        self._clock = clock
        self._new_id = new_id

    async def add_feedback(
        self,
        caller: Caller,
        completion_id: str,
        *,
        metric: str,
        value: float,
        reason: str | None = None,
        details: str | dict[str, Any] | None = None,
        user_id: str | None = None,
    ) -> Feedback:
        """Store feedback on a completion the caller may read (404 when unknown or another project's)."""
        record = await open_completion(self._store, caller, completion_id)
        feedback = Feedback(
            feedback_id=self._new_id(),
            completion_id=completion_id,
            project=record.project,
            metric=metric,
            value=float(value),
            reason=reason,
            details=details,
            user_id=user_id,
            created=self._clock(),
            campaign=record.campaign,
            variant=record.variant,
        )
        await asyncio.to_thread(self._store.put_feedback, feedback)
        return feedback

    async def feedback_of(self, caller: Caller, completion_id: str) -> list[Feedback]:
        """The feedback on a completion the caller may read, oldest first."""
        await open_completion(self._store, caller, completion_id)
        return await asyncio.to_thread(self._store.list_feedback, completion_id)

    async def add_outcome(
        self,
        caller: Caller,
        project_id: str,
        *,
        session_id: str,
        metric: str,
        value: float,
        user_id: str | None = None,
    ) -> SessionOutcome:
        """Store a session's outcome in a project the caller may use (else 404 naming `project_id`,
        the field the API takes it from)."""
        await open_project(self._config, caller, project_id, "project_id")
        records = await asyncio.to_thread(self._store.list_session, project_id, session_id)
        outcome = SessionOutcome(
            outcome_id=self._new_id(),
            session_id=session_id,
            project=project_id,
            metric=metric,
            value=float(value),
            user_id=user_id,
            created=self._clock(),
            campaigns=session_campaigns(records),
        )
        await asyncio.to_thread(self._store.put_outcome, outcome)
        return outcome
