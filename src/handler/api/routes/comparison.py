"""A preference between two completions (spec/FEEDBACK-API.md, `POST /api/v1/comparison`).

`{metric, preferred_completion, other_completion, tied?, project, user_id?, comparison_id?}` ->
`201 {comparison_id}`. Both completions must be stored completions of `project`; another project's
completion is answered exactly like a missing one (404 `EntityNotFound:`). With `tied` ("good" or
"bad") neither is preferred. When both were served by one campaign, the judgement counts toward
that pair of variants' win rates in the campaign's results. Completions given as raw text are not
supported (400): a preference must be between completions this gateway served.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from handler.api.auth import CallerDep
from handler.api.deps import ServicesDep
from handler.api.openapi import error_docs
from handler.api.routes.feedback import Metric

router = APIRouter(tags=["feedback"])

_ERRORS = error_docs(400, (404, "Unknown project or completion, or another project's (`EntityNotFound:`)"))


class ComparisonRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    metric: Metric
    preferred_completion: uuid.UUID
    other_completion: uuid.UUID
    tied: Literal["good", "bad"] | None = None
    project: Annotated[StrictStr, Field(min_length=1, max_length=128)]
    user_id: Annotated[StrictStr, Field(min_length=1, max_length=256)] | None = None
    comparison_id: uuid.UUID | None = Field(
        default=None, description="The client's id for this judgement: sending it again counts it once"
    )


class ComparisonCreated(BaseModel):
    comparison_id: str


@router.post(
    "/api/v1/comparison",
    response_model=ComparisonCreated,
    status_code=201,
    responses=_ERRORS,
    summary="Log a preference between two completions",
)
async def add_comparison(
    body: ComparisonRequest, caller: CallerDep, services: ServicesDep
) -> ComparisonCreated:
    comparison = await services.feedback.add_comparison(
        caller,
        body.project,
        metric=body.metric,
        preferred_completion=str(body.preferred_completion),
        other_completion=str(body.other_completion),
        tied=body.tied,
        user_id=body.user_id,
        comparison_id=str(body.comparison_id) if body.comparison_id else None,
    )
    return ComparisonCreated(comparison_id=comparison.comparison_id)
