"""Feedback on a completion and outcomes of a session: what A/B results are computed from.

`POST /api/v1/feedback` `{completion_id, metric, value, reason?, details?, user_id?}` -> `{feedback_id}`
`POST /api/v1/outcome`  `{value, project_id, metric, session_id, user_id?}`        -> `{outcome_id}`
`GET  /api/v1/completions/{completion_id}/feedback`                              -> the feedback, oldest first

`value` is a number, or a boolean (stored as 1 or 0, so that its mean is a rate).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from handler.api.auth import require_project
from handler.api.deps import ServiceDep
from handler.contract.errors import ErrorResponse
from handler.errors import InvalidRequest, NotFound

router = APIRouter(tags=["feedback"])

METRIC_RE = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
Metric = Annotated[StrictStr, Field(pattern=METRIC_RE, description="Metric name, e.g. `thumbs_up`")]
Value = Annotated[
    StrictBool | StrictInt | Annotated[StrictFloat, Field(allow_inf_nan=False)],
    Field(description="A number, or a boolean (counted as 1 or 0)"),
]
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Invalid body (the field is named)"},
    403: {"model": ErrorResponse, "description": "Key not allowed for this project"},
    404: {"model": ErrorResponse, "description": "Unknown completion or project (`EntityNotFound:`)"},
}


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class FeedbackRequest(_Body):
    completion_id: uuid.UUID
    metric: Metric
    value: Value
    reason: Annotated[StrictStr, Field(max_length=4096)] | None = None
    details: Annotated[StrictStr, Field(max_length=16384)] | dict[str, Any] | None = None
    user_id: Annotated[StrictStr, Field(min_length=1, max_length=256)] | None = None


class FeedbackCreated(BaseModel):
    feedback_id: str


class OutcomeRequest(_Body):
    value: Value
    project_id: Annotated[StrictStr, Field(min_length=1, max_length=128)]
    metric: Metric
    session_id: uuid.UUID
    user_id: Annotated[StrictStr, Field(min_length=1, max_length=256)] | None = None


class OutcomeCreated(BaseModel):
    outcome_id: str


def as_number(value: bool | int | float) -> float:
    return float(value)


@router.post(
    "/api/v1/feedback",
    response_model=FeedbackCreated,
    responses=_ERRORS,
    summary="Log feedback on a completion",
)
async def add_feedback(body: FeedbackRequest, request: Request, service: ServiceDep) -> FeedbackCreated:
    from handler.store.feedback import Feedback

    completion_id = str(body.completion_id)
    record = await asyncio.to_thread(service.store.get_completion, completion_id)
    if record is None:
        raise NotFound(f"completion {completion_id} does not exist", param="completion_id")
    require_project(request, record.project)
    feedback = Feedback(
        feedback_id=str(uuid.uuid4()),
        completion_id=completion_id,
        project=record.project,
        metric=body.metric,
        value=as_number(body.value),
        reason=body.reason,
        details=body.details,
        user_id=body.user_id,
        created=time.time(),
        campaign=record.campaign,
        variant=record.variant,
    )
    await asyncio.to_thread(service.store.put_feedback, feedback)
    return FeedbackCreated(feedback_id=feedback.feedback_id)


@router.get(
    "/api/v1/completions/{completion_id}/feedback",
    responses=_ERRORS,
    summary="List the feedback on a completion",
)
async def list_feedback(completion_id: str, request: Request, service: ServiceDep) -> dict[str, Any]:
    try:
        cid = str(uuid.UUID(completion_id))
    except ValueError:
        raise InvalidRequest(
            f"completion_id: {completion_id!r} is not a valid UUID", param="completion_id"
        ) from None
    record = await asyncio.to_thread(service.store.get_completion, cid)
    if record is None:
        raise NotFound(f"completion {cid} does not exist", param="completion_id")
    require_project(request, record.project)
    feedback = await asyncio.to_thread(service.store.list_feedback, cid)
    return {"completion_id": cid, "feedback": [f.model_dump(mode="json") for f in feedback]}


@router.post(
    "/api/v1/outcome",
    response_model=OutcomeCreated,
    responses=_ERRORS,
    summary="Log the outcome of a session",
)
async def add_outcome(body: OutcomeRequest, request: Request, service: ServiceDep) -> OutcomeCreated:
    """A session that was never stored (`store: false`, or not yet written) is accepted: the outcome
    is kept, and counts toward the campaigns of whatever completions the session has stored."""
    from handler.api.routes.campaigns import load_project
    from handler.store.feedback import SessionOutcome, session_campaigns

    project = body.project_id
    await load_project(service, request, project, "project_id")  # 403, or 404 EntityNotFound
    session_id = str(body.session_id)
    records = await asyncio.to_thread(service.store.list_session, session_id)
    outcome = SessionOutcome(
        outcome_id=str(uuid.uuid4()),
        session_id=session_id,
        project=project,
        metric=body.metric,
        value=as_number(body.value),
        user_id=body.user_id,
        created=time.time(),
        campaigns=session_campaigns(r for r in records if r.project == project),
    )
    await asyncio.to_thread(service.store.put_outcome, outcome)
    return OutcomeCreated(outcome_id=outcome.outcome_id)
