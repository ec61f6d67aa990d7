"""FastAPI dependencies, as `Annotated` aliases routes can declare."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from handler.completions.service import CompletionService


def get_service(request: Request) -> CompletionService:
    service: CompletionService | None = getattr(request.app.state, "service", None)
    if service is None:
        from handler.wiring import default_service

        service = request.app.state.service = default_service()
    return service


ServiceDep = Annotated[CompletionService, Depends(get_service)]
