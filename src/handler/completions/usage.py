"""Usage reports: what a project used over a range of UTC days, grouped by model, key or day.

Read from the aggregate counters written with each answered request (store/usage.py), one Query
per report, so a report costs the same whatever the traffic. Requests with `store: false` are
counted too (they cost money and count against quotas), from their numbers alone, and shown as
`unstored_requests`: the rest adds up to the stored records.
A key sees only its own projects: another project answers exactly like a missing one (404), so a
key cannot learn which projects exist.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel

from handler.completions.caller import Caller
from handler.completions.records import parse_time
from handler.config.source import ConfigSource
from handler.errors import InvalidRequest, NotFound
from handler.store.counting import UsageRow, UsageStore

GroupBy = Literal["model", "key", "day"]
GROUPS: tuple[GroupBy, ...] = ("model", "key", "day")
MAX_DAYS = 366


class UsageFigures(BaseModel):
    requests: int = 0
    unstored_requests: int = 0  # of `requests`, those sent with `store: false`: no records to read
    prompt_tokens: int = 0  # once per request (its choices share the prompt)
    completion_tokens: int = 0
    cached_tokens: int = 0  # of prompt_tokens, read from a provider's cache
    cost_usd: float = 0.0  # of the priced records
    unpriced_completions: int = 0  # records whose model has no prices: not in cost_usd

    def add(self, row: UsageRow) -> None:
        self.requests += row.requests
        self.unstored_requests += row.unstored_requests
        self.prompt_tokens += row.prompt_tokens
        self.completion_tokens += row.completion_tokens
        self.cached_tokens += row.cached_tokens
        self.cost_usd = round(self.cost_usd + row.cost_usd, 10)
        self.unpriced_completions += row.unpriced


class UsageGroup(UsageFigures):
    key: str  # the model ("{project}/{model}"), the API key id ("-": none) or the day (YYYY-MM-DD)


class ProjectUsage(BaseModel):
    project: str
    first_day: str  # YYYY-MM-DD, UTC, inclusive
    last_day: str  # inclusive
    group_by: GroupBy
    groups: list[UsageGroup]
    total: UsageFigures


def _day(value: str | None, param: str, default: str) -> str:
    """A UTC day from YYYY-MM-DD, unix seconds or an ISO 8601 time."""
    if value is None or value == "":
        return default
    try:
        return datetime.strptime(value, "%Y-%m-%d").strftime("%Y-%m-%d")
    except ValueError:
        pass
    moment = parse_time(value, param)
    assert moment is not None
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d")


def report_of(project: str, first: str, last: str, group_by: GroupBy, rows: list[UsageRow]) -> ProjectUsage:
    groups: dict[str, UsageGroup] = {}
    total = UsageFigures()
    for row in rows:
        key = {"model": row.model, "key": row.key_id, "day": row.day}[group_by]
        groups.setdefault(key, UsageGroup(key=key)).add(row)
        total.add(row)
    ordered = [groups[k] for k in sorted(groups)]
    return ProjectUsage(
        project=project, first_day=first, last_day=last, group_by=group_by, groups=ordered, total=total
    )


class UsageService:
    def __init__(
        self, store: UsageStore, config: ConfigSource, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._config = config
        self._clock = clock

    async def report(
        self,
        caller: Caller,
        project: str,
        *,
        first: str | None = None,
        last: str | None = None,
        group_by: str = "model",
    ) -> ProjectUsage:
        """The project's usage from `first` to `last` (UTC days, inclusive; default: this month)."""
        missing = NotFound(f"project {project!r} does not exist", param="project")
        if not caller.may_access(project):
            raise missing
        try:
            await asyncio.to_thread(self._config.project, project)
        except NotFound:
            raise missing from None
        if group_by not in GROUPS:
            raise InvalidRequest(
                f"group_by: {group_by!r} is not one of {', '.join(GROUPS)}", param="group_by"
            )
        today = datetime.fromtimestamp(self._clock(), UTC)
        first_day = _day(first, "from", today.strftime("%Y-%m-01"))
        last_day = _day(last, "to", today.strftime("%Y-%m-%d"))
        if first_day > last_day:
            raise InvalidRequest(f"from: {first_day} is after to: {last_day}", param="from")
        span = datetime.fromisoformat(last_day) - datetime.fromisoformat(first_day)
        if span > timedelta(days=MAX_DAYS):
            raise InvalidRequest(f"from: a report covers at most {MAX_DAYS} days", param="from")
        rows = await asyncio.to_thread(self._store.usage, project, first_day, last_day)
        return report_of(project, first_day, last_day, group_by, rows)  # type: ignore[arg-type]
