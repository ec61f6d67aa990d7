"""Reading stored completions back: by completion id, and a session's completions in order.

The body of a completion is the record as stored (`CompletionRecord`); access is the service's
(`completions/records.py`): 404 for an unknown id, 403 for another project's record.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from handler.api.auth import CallerDep
from handler.api.deps import ServicesDep
from handler.api.params import UUIDPath, uuid_param
from handler.contract.errors import ErrorResponse
from handler.store.records import CompletionRecord

router = APIRouter()

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Not a UUID (the parameter is named)"},
    403: {"model": ErrorResponse, "description": "Key not allowed for this project"},
    404: {"model": ErrorResponse, "description": "Unknown completion or session (`EntityNotFound:`)"},
}


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
async def get_session(session_id: UUIDPath, caller: CallerDep, services: ServicesDep) -> SessionCompletions:
    sid = uuid_param(session_id, "session_id")
    return SessionCompletions(session_id=sid, completions=await services.records.session(caller, sid))
