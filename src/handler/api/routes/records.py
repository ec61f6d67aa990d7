"""Reading stored completions back: by completion id, and a session's completions in order.

The body of a completion is the record as stored (`CompletionRecord`); access is the service's
(`completions/records.py`): 404 for an unknown id and, with the same body, for another project's.
A session belongs to a project: `?project=` names it, and is needed only when several of the
key's projects hold a session of that id (the dev key may use every project).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from handler.api.auth import CallerDep
from handler.api.deps import ServicesDep
from handler.api.openapi import error_docs
from handler.api.params import UUIDPath, uuid_param
from handler.store.records import CompletionRecord

router = APIRouter()

_ERRORS = error_docs(
    (400, "Not a UUID, or an ambiguous session (the parameter is named)"),
    (404, "Unknown completion or session, or another project's (`EntityNotFound:`)"),
)


class SessionCompletions(BaseModel):
    session_id: str
    completions: list[CompletionRecord]  # in the order the requests came


@router.get(
    "/api/v1/completions/{completion_id}",
    response_model=CompletionRecord,
    responses=_ERRORS,
    summary="Read a stored completion",
)
async def get_completion(
    completion_id: UUIDPath, caller: CallerDep, services: ServicesDep
) -> CompletionRecord:
    return await services.records.completion(caller, uuid_param(completion_id, "completion_id"))


@router.get(
    "/api/v1/sessions/{session_id}",
    response_model=SessionCompletions,
    responses=_ERRORS,
    summary="List a session's completions in order",
)
async def get_session(
    session_id: UUIDPath,
    caller: CallerDep,
    services: ServicesDep,
    project: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=128,
            description="the session's project; needed only when several of the key's projects use the id",
        ),
    ] = None,
) -> SessionCompletions:
    sid = uuid_param(session_id, "session_id")
    records = await services.records.session(caller, sid, project)
    return SessionCompletions(session_id=sid, completions=records)
