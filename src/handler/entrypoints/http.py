"""Lambda entrypoint for API Gateway REST (v1), HTTP API (v2) and Function URL events (buffered)."""

from __future__ import annotations

import asyncio
from typing import Any

from mangum import Mangum

from handler.entrypoints import snapstart
from handler.observability import logger, tracer
from handler.wiring import create_app

_app = create_app()
_mangum = Mangum(_app, lifespan="off")
snapstart.register(_app)  # SnapStart's runtime hooks (a no-op off Lambda)
_loop: asyncio.AbstractEventLoop | None = None


def _ensure_loop() -> None:
    """Mangum runs on `asyncio.get_event_loop()`, which fails once anything in the process called
    `asyncio.run` (it leaves no current loop). One loop for the process, set before every
    invocation: the pooled upstream connections (one httpx client per loop) then survive too."""
    global _loop
    if _loop is None or _loop.is_closed():
        _loop = asyncio.new_event_loop()
    asyncio.set_event_loop(_loop)


@logger.inject_lambda_context(clear_state=True)
@tracer().capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _ensure_loop()
    response: dict[str, Any] = _mangum(event, context)
    return response
