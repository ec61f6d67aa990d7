"""Every error a client can see, mapped in one place to the status and body of WIRE-FORMAT.md.

`{"error": {"message", "type", "code", "param"}}`. Body validation errors are 400 with the field
named (never FastAPI's 422); anything unexpected is a 500 whose body says nothing of the cause.
A store that fails a read (`StoreError`: an outage, throttling, a timeout) is a 503 with
`Retry-After`, as is every other 503 (RFC 9110 section 10.2.3).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from handler.contract.errors import body_of, error_body, validation_error
from handler.errors import GatewayError, StoreUnavailable
from handler.observability import logger
from handler.store.errors import StoreError


def json_response(status: int, content: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(content), status_code=status, media_type="application/json", headers=headers)


def gateway_error_response(exc: GatewayError) -> Response:
    # A quota's 429 says when its window turns (RFC 9110 10.2.3); the openai SDK waits that long.
    # A 503 (the store or the key table unavailable) says when to try again.
    retry_after = getattr(exc, "retry_after_s", None)
    headers = {"Retry-After": str(retry_after)} if isinstance(retry_after, int) else None
    if exc.status == 503 and headers is None:
        from handler.settings import get_settings

        headers = {"Retry-After": str(get_settings().store_retry_after_s)}
    return json_response(exc.status, body_of(exc), headers)


def _routes(routes: Any) -> Any:
    """The app's routes, those of included routers flattened in (FastAPI keeps them wrapped; our
    routers carry full paths, no prefix)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _routes(included.routes)
        else:
            yield route


def _allowed(request: Request) -> str:
    """Every method some route serves at this path: Starlette names only the first route's, and
    one path (e.g. /api/v1/batches) may have a route per method. A literal path (/files/uploads)
    is not also the `{file_id}` of a templated one: the literal routes win, as in the schema."""
    from starlette.routing import Match

    matching = [
        (method, route)
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE")
        for route in _routes(request.app.router.routes)
        if route.matches({**request.scope, "method": method})[0] == Match.FULL
    ]
    literal = [(m, r) for m, r in matching if "{" not in getattr(r, "path", "{")]
    methods = {method for method, _ in (literal or matching)}
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


def install(app: FastAPI) -> None:
    @app.exception_handler(GatewayError)
    async def _gateway(_: Request, exc: GatewayError) -> Response:
        return gateway_error_response(exc)

    @app.exception_handler(StoreError)
    async def _store(_: Request, exc: StoreError) -> Response:
        logger.error("store unavailable", extra={"error": str(exc)[:300]})
        return gateway_error_response(StoreUnavailable("the store is unavailable right now; retry shortly"))

    @app.exception_handler(RequestValidationError)
    async def _request_validation(_: Request, exc: RequestValidationError) -> Response:
        return gateway_error_response(validation_error(list(exc.errors())))

    @app.exception_handler(ValidationError)
    async def _validation(_: Request, exc: ValidationError) -> Response:
        return gateway_error_response(validation_error(list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = str(exc.detail)
        if exc.status_code == 404:
            message = f"EntityNotFound: {message}"
        # Starlette's headers (a 405's `Allow`: RFC 9110 section 15.5.6 says it must be sent).
        headers = dict(exc.headers) if exc.headers else None
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": _allowed(request)}
        return json_response(exc.status_code, error_body(message, "invalid_request_error", code), headers)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> Response:
        logger.exception("unhandled error", extra={"error_type": type(exc).__name__})
        return json_response(500, error_body("internal error", "internal_error", "internal_error"))
