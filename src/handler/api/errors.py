"""Every error a client can see, mapped in one place to the status and body of WIRE-FORMAT.md.

`{"error": {"message", "type", "code", "param"}}`. Body validation errors are 400 with the field
named (never FastAPI's 422); anything unexpected is a 500 whose body says nothing of the cause.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from handler.errors import GatewayError, InvalidRequest
from handler.observability import logger


def error_body(message: str, type_: str, code: str, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "code": code, "param": param}}


def json_response(status: int, content: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(content), status_code=status, media_type="application/json", headers=headers)


def gateway_error_response(exc: GatewayError) -> Response:
    return json_response(exc.status, error_body(exc.message, exc.type, exc.code, exc.param))


_UNION_LABELS = {"str", "int", "float", "bool", "dict", "list", "none", "switch_tool", "function_tool"}


def _loc(loc: tuple[Any, ...] | list[Any]) -> str:
    """`messages[0].content` from pydantic's `("body", "messages", 0, "str")`: union labels dropped."""
    out: list[str] = []
    for p in (str(p) for p in loc):
        if p == "body" and not out:
            continue
        if p.isdigit() and out:
            out[-1] = f"{out[-1]}[{p}]"
        elif "[" in p or "-" in p or p in _UNION_LABELS:
            continue
        else:
            out.append(p)
    return ".".join(out)


def validation_error(errors: list[Any]) -> InvalidRequest:
    """The first problem, named by its field path: what a developer needs to fix the request."""
    if not errors:
        return InvalidRequest("invalid request body")
    first = errors[0]
    if first.get("type") == "json_invalid":
        return InvalidRequest("request body is not valid JSON", code="invalid_json")
    field = _loc(first.get("loc", ())) or "body"
    if field == "body" and first.get("type") in ("missing", "model_attributes_type", "dict_type"):
        return InvalidRequest("request body must be a JSON object", param="body")
    message = f"{field}: {first.get('msg', 'invalid value')}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return InvalidRequest(message, param=field)


def install(app: FastAPI) -> None:
    @app.exception_handler(GatewayError)
    async def _gateway(_: Request, exc: GatewayError) -> Response:
        return gateway_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _request_validation(_: Request, exc: RequestValidationError) -> Response:
        return gateway_error_response(validation_error(list(exc.errors())))

    @app.exception_handler(ValidationError)
    async def _validation(_: Request, exc: ValidationError) -> Response:
        return gateway_error_response(validation_error(list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = str(exc.detail)
        if exc.status_code == 404:
            message = f"EntityNotFound: {message}"
        return json_response(exc.status_code, error_body(message, "invalid_request_error", code))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> Response:
        logger.exception("unhandled error", extra={"error_type": type(exc).__name__})
        return json_response(500, error_body("internal error", "internal_error", "internal_error"))
