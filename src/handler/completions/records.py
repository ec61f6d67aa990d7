"""Reading stored completions back: one by id, a session's in order, a project's listing by filter.

Every read is on behalf of a `Caller`: a record of a project outside the caller's key is answered
exactly like one that does not exist (the same 404). A listing's filters arrive as the client wrote
them and are read only once the project is known to be the caller's and to exist: a bad filter on a
forbidden or unknown project is that 404, not a 400.

A session belongs to a project (clients choose session ids, so two projects may use the same one):
`session` reads the session of the id in the one project of the caller's that holds it; when several
of the caller's projects do (the dev key sees them all), the caller names one with `project`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from handler.completions.access import open_completion, open_project
from handler.completions.caller import Caller
from handler.config.source import ConfigSource
from handler.errors import InvalidRequest, NotFound
from handler.store.base import CompletionStore
from handler.store.errors import InvalidCursor
from handler.store.records import CompletionRecord
from handler.store.values import CompletionPage, CompletionQuery


@dataclass(frozen=True)
class ListingFilters:
    """A listing's filters, unparsed; they combine with AND."""

    labels: Sequence[str] = ()  # `key=value` each
    tags: Sequence[str] = ()
    user: str | None = None
    since: str | None = None  # unix seconds or ISO 8601, inclusive
    until: str | None = None  # unix seconds or ISO 8601, exclusive


def parse_time(value: str | None, param: str) -> float | None:
    """Unix seconds from unix seconds or an ISO 8601 time (UTC when it names no zone)."""
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(
            f"{param}: {value!r} is neither unix seconds nor an ISO 8601 time", param=param
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def parse_labels(values: Sequence[str]) -> dict[str, str]:
    """`key=value` filters as a dict; a key asked for with two values can match nothing: a 400."""
    labels: dict[str, str] = {}
    for value in values:
        key, sep, label = value.partition("=")
        if not sep or not key:
            raise InvalidRequest(f"label: {value!r} must be key=value", param="label")
        if key in labels and labels[key] != label:
            raise InvalidRequest(
                f"label: {key!r} is asked for with two values; nothing can match", param="label"
            )
        labels[key] = label
    return labels


class RecordsService:
    """Stored completions, read for a caller. Blocking store and config reads run in a thread."""

    def __init__(self, store: CompletionStore, config: ConfigSource) -> None:
        self._store = store
        self._config = config

    async def completion(self, caller: Caller, completion_id: str) -> CompletionRecord:
        """One stored completion: 404 when unknown or another project's (the same answer)."""
        return await open_completion(self._store, caller, completion_id)

    async def session(
        self, caller: Caller, session_id: str, project: str | None = None
    ) -> list[CompletionRecord]:
        """A project's session's completions in request order. Without `project`, the one project
        of the caller's that holds the id (400 naming `project` when several do); 404 when none."""
        missing = NotFound(f"session {session_id} does not exist", param="session_id")
        if project is None:
            held = await asyncio.to_thread(self._store.session_projects, session_id)
            mine = [p for p in held if caller.may_access(p)]
            if not mine:
                raise missing
            if len(mine) > 1:
                raise InvalidRequest(
                    f"project: session {session_id} exists in several of your projects "
                    f"({', '.join(map(repr, mine))}); name one with ?project=",
                    param="project",
                )
            project = mine[0]
        elif not caller.may_access(project):
            raise missing
        records = await asyncio.to_thread(self._store.list_session, project, session_id)
        if not records:
            raise missing
        return records

    async def listing(
        self,
        caller: Caller,
        project: str,
        filters: ListingFilters,
        *,
        limit: int = 20,
        cursor: str | None = None,
    ) -> CompletionPage:
        """One page of the project's completions matching `filters`, newest first."""
        await open_project(self._config, caller, project, "project")
        query = CompletionQuery(
            project=project,
            labels=parse_labels(filters.labels),
            tags=list(dict.fromkeys(filters.tags)),
            user=filters.user,
            since=parse_time(filters.since, "since"),
            until=parse_time(filters.until, "until"),
            limit=limit,
            cursor=cursor or None,
        )
        try:
            return await asyncio.to_thread(self._store.query_completions, query)
        except InvalidCursor as exc:
            raise InvalidRequest(str(exc), param="cursor") from None
