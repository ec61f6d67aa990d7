"""OpenAI's Models API: `GET /api/v1/models` and `GET /api/v1/models/{id}` (`client.models`)."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel

from handler.api.auth import CallerDep
from handler.api.deps import ServicesDep
from handler.api.openapi import error_docs

router = APIRouter()


class Model(BaseModel):
    id: str  # `{project}` (the alias) or `{project}/{model}`
    object: Literal["model"]
    created: int
    owned_by: str  # the project
    default_model: str | None = None  # for a `{project}` alias: what it routes to


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[Model]


@router.get("/api/v1/models", response_model=ModelList, summary="The models this key may use")
async def list_models(caller: CallerDep, services: ServicesDep) -> ModelList:
    entries: list[dict[str, Any]] = await asyncio.to_thread(services.models.list, caller)
    return ModelList(object="list", data=[Model.model_validate(e) for e in entries])


@router.get(
    "/api/v1/models/{model_id:path}",
    response_model=Model,
    responses=error_docs((404, "No such model for this key")),
    summary="One model (`{project}` or `{project}/{model}`)",
)
async def get_model(model_id: str, caller: CallerDep, services: ServicesDep) -> Model:
    return Model.model_validate(await asyncio.to_thread(services.models.get, caller, model_id))
