"""FastAPI dependencies, as `Annotated` aliases routes can declare."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from handler.completions.service import CompletionService


async def get_service(request: Request) -> CompletionService:
    """Async on purpose: FastAPI runs a plain `def` dependency in a worker thread, and under Mangum
    anyio starts a new thread for it on every invocation (its workers die with each request's task)."""
    service: CompletionService | None = getattr(request.app.state, "service", None)
    if service is None:
        from handler.wiring import default_service

        service = request.app.state.service = default_service()
    return service


ServiceDep = Annotated[CompletionService, Depends(get_service)]
