"""A project's usage report: requests, tokens and cost by model, key or day (completions/usage.py).

`from` and `to` are UTC days (YYYY-MM-DD, or any time in that day: unix seconds or ISO 8601), both
inclusive; by default this month so far. A project outside the caller's key is a 404, like a
missing one.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from handler.api.auth import CallerDep
from handler.api.deps import ServicesDep
from handler.api.openapi import error_docs
from handler.completions.usage import ProjectUsage

router = APIRouter()

_ERRORS = error_docs(
    (400, "Bad `from`, `to` or `group_by` (the parameter is named)"),
    (404, "Unknown project, or not the key's (`EntityNotFound:`)"),
)


@router.get(
    "/api/v1/projects/{project}/usage",
    response_model=ProjectUsage,
    responses=_ERRORS,
    summary="A project's usage and cost over a range of days",
)
async def get_usage(
    project: str,
    caller: CallerDep,
    services: ServicesDep,
    first: Annotated[str | None, Query(alias="from", description="first UTC day, inclusive")] = None,
    last: Annotated[str | None, Query(alias="to", description="last UTC day, inclusive")] = None,
    group_by: Annotated[str, Query(description="model | key | day")] = "model",
) -> ProjectUsage:
    return await services.usage.report(caller, project, first=first, last=last, group_by=group_by)
