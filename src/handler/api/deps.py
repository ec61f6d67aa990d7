"""FastAPI dependencies, as `Annotated` aliases routes can declare.

The app is handed a factory of its `Services` by the composition root (`handler/wiring.py`); the
first request builds them, so nothing touches AWS at import time and `api` never imports upward.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from handler.completions.service import CompletionService

if TYPE_CHECKING:
    from handler.batch.runtime import Runtime
    from handler.completions.campaign_results import CampaignResultsService
    from handler.completions.feedback import FeedbackService
    from handler.completions.models import ModelsService
    from handler.completions.records import RecordsService
    from handler.completions.usage import UsageService
    from handler.store.keys import CachedKeys


@dataclass(frozen=True)
class Services:
    """Everything the routes use, built once per process by the composition root."""

    completions: CompletionService
    keys: CachedKeys
    batches: Callable[[], Runtime]  # built on first use: most invocations never touch a batch
    records: RecordsService  # stored completions: by id, by session, a project's listing
    feedback: FeedbackService  # feedback on completions, outcomes of sessions
    campaigns: CampaignResultsService  # a project's A/B campaigns and their results
    usage: UsageService  # a project's usage and cost reports
    models: ModelsService  # the models a key may use (OpenAI's Models API)


ServicesFactory = Callable[[], Services]


def services_of(request: Request) -> Services:
    services: Services | None = getattr(request.app.state, "services", None)
    if services is None:
        factory: ServicesFactory = request.app.state.services_factory
        services = request.app.state.services = factory()
    return services


async def get_services(request: Request) -> Services:
    """Async on purpose: FastAPI runs a plain `def` dependency in a worker thread, and under Mangum
    anyio starts a new thread for it on every invocation (its workers die with each request's task)."""
    return services_of(request)


async def get_service(request: Request) -> CompletionService:
    return services_of(request).completions


ServicesDep = Annotated[Services, Depends(get_services)]
ServiceDep = Annotated[CompletionService, Depends(get_service)]
