"""Reading stored completions back: by completion id, and a session's completions in order."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from fastapi import APIRouter, Request

from handler.api.auth import require_project
from handler.api.deps import ServiceDep
from handler.errors import InvalidRequest, NotFound

router = APIRouter()


def _uuid(value: str, param: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidRequest(f"{param}: {value!r} is not a valid UUID", param=param) from None


@router.get("/api/v1/completions/{completion_id}", summary="Read a stored completion")
async def get_completion(completion_id: str, request: Request, service: ServiceDep) -> dict[str, Any]:
    cid = _uuid(completion_id, "completion_id")
    record = await asyncio.to_thread(service.store.get_completion, cid)
    if record is None:
        raise NotFound(f"completion {cid} does not exist", param="completion_id")
    require_project(request, record.project)
    return record.model_dump(mode="json")


@router.get("/api/v1/sessions/{session_id}", summary="List a session's completions in order")
async def get_session(session_id: str, request: Request, service: ServiceDep) -> dict[str, Any]:
    sid = _uuid(session_id, "session_id")
    records = await asyncio.to_thread(service.store.list_session, sid)
    if not records:
        raise NotFound(f"session {sid} does not exist", param="session_id")
    for project in {r.project for r in records}:
        require_project(request, project)
    return {"session_id": sid, "completions": [r.model_dump(mode="json") for r in records]}
