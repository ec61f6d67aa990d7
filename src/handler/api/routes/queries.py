"""Listing a project's stored completions by label, tag, user and time range, newest first.

`GET /api/v1/projects/{project}/completions?label=team=docs&tag=beta&user=u1&since=...&until=...`
`&limit=20&cursor=...` -> `{"project", "completions": [...], "next_cursor"}`. Filters combine with
AND (`label` and `tag` may repeat); `since` (inclusive) and `until` (exclusive) are unix seconds or
ISO 8601 times; pass `next_cursor` back as `cursor` for the next page until it is null. Read
through a secondary index (store/queries.py), never a table scan.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from handler.api.deps import ServiceDep
from handler.api.routes.campaigns import load_project
from handler.contract.errors import ErrorResponse
from handler.errors import InvalidRequest

router = APIRouter(tags=["completions"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "A bad filter, time or cursor (the parameter is named)"},
    403: {"model": ErrorResponse, "description": "Key not allowed for this project"},
    404: {"model": ErrorResponse, "description": "Unknown project (`EntityNotFound:`)"},
}


def parse_time(value: str | None, param: str) -> float | None:
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


def parse_labels(values: list[str]) -> dict[str, str]:
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


@router.get(
    "/api/v1/projects/{project}/completions",
    responses=_ERRORS,
    summary="List a project's stored completions by label, tag, user and time",
)
async def list_completions(
    project: str,
    request: Request,
    service: ServiceDep,
    label: Annotated[list[str], Query(description="key=value; repeat for several (AND)")] = [],  # noqa: B006
    tag: Annotated[list[str], Query(description="repeat for several (AND)")] = [],  # noqa: B006
    user: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
    since: Annotated[str | None, Query(description="unix seconds or ISO 8601, inclusive")] = None,
    until: Annotated[str | None, Query(description="unix seconds or ISO 8601, exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> dict[str, Any]:
    from handler.store.queries import CompletionQuery, InvalidCursor

    await load_project(service, request, project, "project")
    query = CompletionQuery(
        project=project,
        labels=parse_labels(label),
        tags=list(dict.fromkeys(tag)),
        user=user,
        since=parse_time(since, "since"),
        until=parse_time(until, "until"),
        limit=limit,
        cursor=cursor or None,
    )
    try:
        page = await asyncio.to_thread(service.store.query_completions, query)
    except InvalidCursor as exc:
        raise InvalidRequest(str(exc), param="cursor") from None
    return {
        "project": project,
        "completions": [r.model_dump(mode="json") for r in page.records],
        "next_cursor": page.next_cursor,
    }
