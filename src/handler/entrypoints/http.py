"""Lambda entrypoint for API Gateway REST (v1), HTTP API (v2) and Function URL events (buffered)."""

from __future__ import annotations

from typing import Any

from mangum import Mangum

from handler.api.app import create_app
from handler.observability import logger, tracer

_mangum = Mangum(create_app(), lifespan="off")


@logger.inject_lambda_context(clear_state=True)
@tracer().capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    response: dict[str, Any] = _mangum(event, context)
    return response
