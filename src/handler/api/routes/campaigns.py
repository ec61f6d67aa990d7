"""A/B campaigns of a project, and their results per variant: enough to pick a winner.

`GET /api/v1/projects/{project}/ab_campaigns`                         the project's campaigns
`GET /api/v1/projects/{project}/ab_campaigns/{id_or_key}/results`     results
`GET /api/v1/ab_campaigns/{id_or_key}/results[?project=...]`          the same; without `project`,
                                                                      the campaign must be named by id

Results come from counters updated as completions, feedback and outcomes are stored (no scan):
per variant, the stored requests (and completions, failures), and per feedback or outcome metric
its count, sum and mean.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from fastapi import APIRouter, Request

from handler.api.auth import require_project
from handler.api.deps import ServiceDep
from handler.completions.service import CompletionService
from handler.config.models import ProjectConfig
from handler.contract.errors import ErrorResponse
from handler.errors import InvalidRequest, NotFound

router = APIRouter(tags=["ab_campaigns"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "A campaign key without a project"},
    403: {"model": ErrorResponse, "description": "Key not allowed for this project"},
    404: {"model": ErrorResponse, "description": "Unknown project or campaign (`EntityNotFound:`)"},
}


async def load_project(service: CompletionService, request: Request, name: str, param: str) -> ProjectConfig:
    """The project, once the caller's key is checked for it; 404 EntityNotFound naming `param`."""
    require_project(request, name)
    try:
        return await asyncio.to_thread(service.config.project, name)
    except NotFound:
        raise NotFound(f"project {name!r} does not exist", param=param) from None


def _metrics(stats: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m: {"count": s.count, "sum": s.sum, "mean": s.mean} for m, s in stats.items()}


def _campaign(project: ProjectConfig, key: str) -> dict[str, Any]:
    campaign = project.campaigns[key]
    return {
        "id": str(campaign.id),
        "key": key,
        "project": project.project,
        "status": campaign.status,
        "variants": dict(campaign.variants),
    }


async def _results(service: CompletionService, project: ProjectConfig, ref: str) -> dict[str, Any]:
    from handler.completions.campaigns import find_campaign

    key, campaign = find_campaign(project, ref)
    stats = {s.variant: s for s in await asyncio.to_thread(service.store.campaign_stats, str(campaign.id))}
    total_weight = sum(campaign.variants.values())
    names = [*campaign.variants, *(v for v in stats if v not in campaign.variants)]
    total_requests = sum(s.requests for s in stats.values())
    variants = []
    for name in names:
        s = stats.get(name)
        weight = campaign.variants.get(name, 0.0)
        requests = s.requests if s else 0
        variants.append(
            {
                "variant": name,
                "model": f"{project.project}/{name}",
                "weight": weight,
                "target_share": weight / total_weight if total_weight else 0.0,
                "requests": requests,
                "share": requests / total_requests if total_requests else None,
                "completions": s.completions if s else 0,
                "failures": s.failures if s else 0,
                "feedback": _metrics(s.feedback) if s else {},
                "outcomes": _metrics(s.outcomes) if s else {},
            }
        )
    return {"campaign": _campaign(project, key), "requests": total_requests, "variants": variants}


@router.get(
    "/api/v1/projects/{project}/ab_campaigns", responses=_ERRORS, summary="List a project's campaigns"
)
async def list_campaigns(project: str, request: Request, service: ServiceDep) -> dict[str, Any]:
    config = await load_project(service, request, project, "project")
    return {"project": project, "ab_campaigns": [_campaign(config, key) for key in config.campaigns]}


@router.get(
    "/api/v1/projects/{project}/ab_campaigns/{id_or_key}/results",
    responses=_ERRORS,
    summary="A campaign's results per variant",
)
async def project_campaign_results(
    project: str, id_or_key: str, request: Request, service: ServiceDep
) -> dict[str, Any]:
    config = await load_project(service, request, project, "project")
    return await _results(service, config, id_or_key)


@router.get(
    "/api/v1/ab_campaigns/{id_or_key}/results",
    responses=_ERRORS,
    summary="A campaign's results per variant (by id, or by key with ?project=)",
)
async def campaign_results(
    id_or_key: str, request: Request, service: ServiceDep, project: str | None = None
) -> dict[str, Any]:
    if project is not None:
        config = await load_project(service, request, project, "project")
        return await _results(service, config, id_or_key)
    try:
        campaign_id = str(uuid.UUID(id_or_key))
    except ValueError:
        raise InvalidRequest(
            "project: a campaign named by key needs its project: add ?project=<project>, "
            "or name the campaign by its id",
            param="project",
        ) from None
    # The campaign's counters know its project; a campaign with no stored request yet is unknown here.
    stats = await asyncio.to_thread(service.store.campaign_stats, campaign_id)
    owner = next((s.project for s in stats if s.project), None)
    if owner is None:
        raise NotFound(
            f"campaign {campaign_id} has no stored requests (name its project with ?project= to see it)",
            param="id_or_key",
        )
    config = await load_project(service, request, owner, "project")
    return await _results(service, config, campaign_id)
