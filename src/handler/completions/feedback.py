"""Feedback on completions and outcomes of sessions: what A/B results are computed from.

Feedback is attached to a stored completion, so it is refused for a completion the caller may not
read; it counts toward the campaign variant that served the completion. An outcome names its
project and session: the project is checked (404 when unknown or not the caller's), the session need
not be stored (a `store: false` session, or one not written yet), and the outcome counts toward the
campaigns of that project's session (sessions belong to a project; another project's session of the
same id is another session).

A value is a number, or a boolean stored as 1 or 0, so that its mean is a rate.

A client may name its feedback or outcome (`feedback_id` / `outcome_id`): sending it again counts
nothing more. A comparison (a preference between two completions of the project) counts toward its
campaign's pair of variants when both were served by one campaign. After a value is counted, the
campaign's stop rule is checked (completions/campaign_state.py).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

from handler.completions.access import open_completion, open_project
from handler.completions.caller import Caller
from handler.completions.campaign_state import OUTCOME_PREFIX, CampaignStops
from handler.config.models import ProjectConfig
from handler.config.source import ConfigSource
from handler.errors import InvalidRequest, NotFound
from handler.observability import logger
from handler.store.base import Store
from handler.store.errors import StoreError
from handler.store.records import CompletionRecord
from handler.store.values import Comparison, Feedback, SessionOutcome, session_campaigns


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
        stops: CampaignStops | None = None,
    ) -> None:
        self._store = store
        self._config = config
        self._clock = clock
        self._new_id = new_id
        self._stops = stops

    async def _check_stop(self, project: ProjectConfig | str, campaign_id: str, metric: str) -> None:
        """The campaign's stop rule, after a value was counted; its failure fails no write (the
        value is stored, and the next one checks again)."""
        if self._stops is None:
            return
        try:
            config = project if isinstance(project, ProjectConfig) else self._config.cached(project)
            if config is None:
                config = await asyncio.to_thread(self._config.project, str(project))
            await self._stops.check(config, campaign_id, metric)
        except (StoreError, NotFound) as exc:
            logger.warning("stop rule not checked", extra={"campaign": campaign_id, "error": str(exc)})

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
        feedback_id: str | None = None,
    ) -> Feedback:
        """Store feedback on a completion the caller may read (404 when unknown or another project's)."""
        record = await open_completion(self._store, caller, completion_id)
        feedback = Feedback(
            feedback_id=feedback_id or self._new_id(),
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
        if feedback.campaign and feedback.variant:
            await self._check_stop(record.project, feedback.campaign, metric)
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
        outcome_id: str | None = None,
    ) -> SessionOutcome:
        """Store a session's outcome in a project the caller may use (else 404 naming `project_id`,
        the field the API takes it from)."""
        config = await open_project(self._config, caller, project_id, "project_id")
        records = await asyncio.to_thread(self._store.list_session, project_id, session_id)
        outcome = SessionOutcome(
            outcome_id=outcome_id or self._new_id(),
            session_id=session_id,
            project=project_id,
            metric=metric,
            value=float(value),
            user_id=user_id,
            created=self._clock(),
            campaigns=session_campaigns(records),
        )
        await asyncio.to_thread(self._store.put_outcome, outcome)
        for campaign_id, _ in outcome.campaigns:
            await self._check_stop(config, campaign_id, f"{OUTCOME_PREFIX}{metric}")
        return outcome

    async def _project_completion(self, project: str, completion_id: str, param: str) -> CompletionRecord:
        """A completion of `project`; another project's answers exactly like a missing one."""
        record = await asyncio.to_thread(self._store.get_completion, completion_id)
        if record is None or record.project != project:
            raise NotFound(f"completion {completion_id} does not exist", param=param)
        return record

    async def add_comparison(
        self,
        caller: Caller,
        project: str,
        *,
        metric: str,
        preferred_completion: str,
        other_completion: str,
        tied: str | None = None,
        user_id: str | None = None,
        comparison_id: str | None = None,
    ) -> Comparison:
        """Store a preference between two completions of `project` (404 for a project outside the
        key, and for a completion that is missing or another project's)."""
        if preferred_completion == other_completion:
            raise InvalidRequest(
                "other_completion: must be a different completion from preferred_completion",
                param="other_completion",
            )
        await open_project(self._config, caller, project, "project")
        preferred = await self._project_completion(project, preferred_completion, "preferred_completion")
        other = await self._project_completion(project, other_completion, "other_completion")
        same_campaign = preferred.campaign is not None and preferred.campaign == other.campaign
        comparison = Comparison(
            comparison_id=comparison_id or self._new_id(),
            project=project,
            metric=metric,
            preferred_completion=preferred_completion,
            other_completion=other_completion,
            tied=tied,
            user_id=user_id,
            created=self._clock(),
            campaign=preferred.campaign if same_campaign else None,
            preferred_variant=preferred.variant if same_campaign else None,
            other_variant=other.variant if same_campaign else None,
        )
        await asyncio.to_thread(self._store.put_comparison, comparison)
        return comparison
