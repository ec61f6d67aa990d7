"""A/B campaigns of a project, and their results per variant: enough to pick a winner.

`GET /api/v1/projects/{project}/ab_campaigns`                         the project's campaigns
`GET /api/v1/projects/{project}/ab_campaigns/{id_or_key}/results`     results
`GET /api/v1/ab_campaigns/{id_or_key}/results[?project=...]`          the same; without `project`,
                                                                      the campaign must be named by id
`GET /api/v1/projects/{project}/ab_campaigns/{id_or_key}/report`      the results as one HTML page

What the results hold, and where they come from, is `completions/campaign_results.py`.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from handler.api.auth import CallerDep
from handler.api.deps import ServicesDep
from handler.api.openapi import error_docs
from handler.completions.campaign_results import CampaignResults, CampaignSummary

router = APIRouter(tags=["ab_campaigns"])

_ERRORS = error_docs(
    (400, "A campaign key without a project"),
    (404, "Unknown project or campaign, or another project's (`EntityNotFound:`)"),
)


class ProjectCampaigns(BaseModel):
    project: str
    ab_campaigns: list[CampaignSummary]  # in the order of the project's config


@router.get(
    "/api/v1/projects/{project}/ab_campaigns",
    response_model=ProjectCampaigns,
    responses=_ERRORS,
    summary="List a project's campaigns",
)
async def list_campaigns(project: str, caller: CallerDep, services: ServicesDep) -> ProjectCampaigns:
    return ProjectCampaigns(project=project, ab_campaigns=await services.campaigns.campaigns(caller, project))


@router.get(
    "/api/v1/projects/{project}/ab_campaigns/{id_or_key}/results",
    response_model=CampaignResults,
    responses=_ERRORS,
    summary="A campaign's results per variant",
)
async def project_campaign_results(
    project: str, id_or_key: str, caller: CallerDep, services: ServicesDep
) -> CampaignResults:
    return await services.campaigns.results(caller, id_or_key, project)


@router.get(
    "/api/v1/ab_campaigns/{id_or_key}/results",
    response_model=CampaignResults,
    responses=_ERRORS,
    summary="A campaign's results per variant (by id, or by key with ?project=)",
)
async def campaign_results(
    id_or_key: str, caller: CallerDep, services: ServicesDep, project: str | None = None
) -> CampaignResults:
    return await services.campaigns.results(caller, id_or_key, project)


@router.get(
    "/api/v1/projects/{project}/ab_campaigns/{id_or_key}/report",
    response_class=HTMLResponse,  # errors are JSON: api/openapi.py documents them so (no `responses=`)
    summary="A campaign's results as a self-contained HTML page",
)
async def project_campaign_report(
    project: str, id_or_key: str, caller: CallerDep, services: ServicesDep
) -> HTMLResponse:
    """Drawn with inline SVG and CSS only; the policy header holds it to that (nothing fetched)."""
    return HTMLResponse(
        await services.campaigns.report(caller, id_or_key, project),
        headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:"},
    )
