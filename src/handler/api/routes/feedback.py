"""Feedback on a completion and outcomes of a session: what A/B results are computed from.

`POST /api/v1/feedback` `{completion_id, metric, value, reason?, details?, user_id?}` -> `{feedback_id}`
`POST /api/v1/outcome`  `{value, project_id, metric, session_id, user_id?}`        -> `{outcome_id}`
(`feedback_id` / `outcome_id`, optional UUIDs: the client's own id; sent again, it counts once)
`GET  /api/v1/completions/{completion_id}/feedback`                              -> the feedback, oldest first

`value` is a number, or a boolean (stored as 1 or 0, so that its mean is a rate).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)

from handler.api.auth import CallerDep
from handler.api.deps import ServicesDep
from handler.api.openapi import error_docs
from handler.api.params import UUIDPath, uuid_param
from handler.contract.storable import check_storable
from handler.store.values import Feedback

router = APIRouter(tags=["feedback"])

METRIC_RE = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
Metric = Annotated[StrictStr, Field(pattern=METRIC_RE, description="Metric name, e.g. `thumbs_up`")]
Value = Annotated[
    StrictBool | StrictInt | Annotated[StrictFloat, Field(allow_inf_nan=False)],
    Field(description="A number, or a boolean (counted as 1 or 0)"),
]
_ERRORS = error_docs(400, (404, "Unknown completion or project, or another project's (`EntityNotFound:`)"))


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        """What cannot be stored (a lone surrogate in `reason`, `details` nested too deep) is a 400
        naming the field, never an answer whose write then fails (contract/storable.py)."""
        details = data.get("details") if isinstance(data, dict) else None
        check_storable(data, cls.__name__, [(("details",), details)])
        return data


class FeedbackRequest(_Body):
    completion_id: uuid.UUID
    metric: Metric
    value: Value
    reason: Annotated[StrictStr, Field(max_length=4096)] | None = None
    details: Annotated[StrictStr, Field(max_length=16384)] | dict[str, Any] | None = None
    user_id: Annotated[StrictStr, Field(min_length=1, max_length=256)] | None = None
    feedback_id: uuid.UUID | None = Field(
        default=None, description="The client's id for this feedback: sending it again counts it once"
    )


class FeedbackCreated(BaseModel):
    feedback_id: str


class OutcomeRequest(_Body):
    value: Value
    project_id: Annotated[StrictStr, Field(min_length=1, max_length=128)]
    metric: Metric
    session_id: uuid.UUID
    user_id: Annotated[StrictStr, Field(min_length=1, max_length=256)] | None = None
    outcome_id: uuid.UUID | None = Field(
        default=None, description="The client's id for this outcome: sending it again counts it once"
    )


class OutcomeCreated(BaseModel):
    outcome_id: str


class CompletionFeedback(BaseModel):
    completion_id: str
    feedback: list[Feedback]  # oldest first


@router.post(
    "/api/v1/feedback",
    response_model=FeedbackCreated,
    responses=_ERRORS,
    summary="Log feedback on a completion",
)
async def add_feedback(body: FeedbackRequest, caller: CallerDep, services: ServicesDep) -> FeedbackCreated:
    feedback = await services.feedback.add_feedback(
        caller,
        str(body.completion_id),
        metric=body.metric,
        value=body.value,
        reason=body.reason,
        details=body.details,
        user_id=body.user_id,
        feedback_id=str(body.feedback_id) if body.feedback_id else None,
    )
    return FeedbackCreated(feedback_id=feedback.feedback_id)


@router.get(
    "/api/v1/completions/{completion_id}/feedback",
    response_model=CompletionFeedback,
    responses=_ERRORS,
    summary="List the feedback on a completion",
)
async def list_feedback(
    completion_id: UUIDPath, caller: CallerDep, services: ServicesDep
) -> CompletionFeedback:
    cid = uuid_param(completion_id, "completion_id")
    return CompletionFeedback(completion_id=cid, feedback=await services.feedback.feedback_of(caller, cid))


@router.post(
    "/api/v1/outcome",
    response_model=OutcomeCreated,
    responses=_ERRORS,
    summary="Log the outcome of a session",
)
async def add_outcome(body: OutcomeRequest, caller: CallerDep, services: ServicesDep) -> OutcomeCreated:
    """A session that was never stored (`store: false`, or not yet written) is accepted: the outcome
    is kept, and counts toward the campaigns of whatever completions the session has stored."""
    outcome = await services.feedback.add_outcome(
        caller,
        body.project_id,
        session_id=str(body.session_id),
        metric=body.metric,
        value=body.value,
        user_id=body.user_id,
        outcome_id=str(body.outcome_id) if body.outcome_id else None,
    )
    return OutcomeCreated(outcome_id=outcome.outcome_id)
