"""Listing a project's stored completions by label, tag, user and time range, newest first.

`GET /api/v1/projects/{project}/completions?label=team=docs&tag=beta&user=u1&since=...&until=...`
`&limit=20&cursor=...` -> `{"project", "completions": [...], "next_cursor"}`. Filters combine with
AND (`label` and `tag` may repeat); `since` (inclusive) and `until` (exclusive) are unix seconds or
ISO 8601 times; pass `next_cursor` back as `cursor` for the next page until it is null. Read
through a secondary index (store/queries.py), never a table scan; the filters are read by the
service (`completions/records.py`), after the project's access and existence are checked.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from handler.api.auth import CallerDep
from handler.api.deps import ServicesDep
from handler.api.openapi import error_docs
from handler.completions.records import ListingFilters
from handler.store.records import CompletionRecord

router = APIRouter(tags=["completions"])

_ERRORS = error_docs(
    (400, "A bad filter, time or cursor (the parameter is named)"),
    (404, "Unknown project, or another project's (`EntityNotFound:`)"),
)


class CompletionListing(BaseModel):
    project: str
    completions: list[CompletionRecord]  # newest first
    next_cursor: str | None  # null on the last page


@router.get(
    "/api/v1/projects/{project}/completions",
    response_model=CompletionListing,
    responses=_ERRORS,
    summary="List a project's stored completions by label, tag, user and time",
)
async def list_completions(
    project: str,
    caller: CallerDep,
    services: ServicesDep,
    label: Annotated[list[str], Query(description="key=value; repeat for several (AND)")] = [],  # noqa: B006
    tag: Annotated[list[str], Query(description="repeat for several (AND)")] = [],  # noqa: B006
    user: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
    since: Annotated[str | None, Query(description="unix seconds or ISO 8601, inclusive")] = None,
    until: Annotated[str | None, Query(description="unix seconds or ISO 8601, exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> CompletionListing:
    filters = ListingFilters(labels=label, tags=tag, user=user, since=since, until=until)
    page = await services.records.listing(caller, project, filters, limit=limit, cursor=cursor)
    return CompletionListing(project=project, completions=page.records, next_cursor=page.next_cursor)
