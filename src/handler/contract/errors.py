"""The error body every failure has on the wire (spec/WIRE-FORMAT.md), built in this one place.

`{"error": {"message", "type", "code", "param"}}`: HTTP responses, the in-band SSE error event and
batch output lines all use `error_body` (a batch line's own `error` field, OpenAI's shorter shape,
is `line_error`). `validation_error` turns pydantic's errors into the `InvalidRequest` that names
the first bad field, for HTTP bodies and batch lines alike.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from handler.errors import GatewayError, InvalidRequest


class ErrorBody(BaseModel):
    message: str
    type: str
    code: str
    param: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


def error_body(message: str, type_: str, code: str, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "code": code, "param": param}}


def body_of(exc: GatewayError) -> dict[str, Any]:
    """The wire body of a domain error."""
    return error_body(exc.message, exc.type, exc.code, exc.param)


def line_error(code: str | None, message: str | None) -> dict[str, Any]:
    """The `error` of a batch output line: OpenAI's batch shape, `{"code", "message"}` only (a line
    the API answered also carries the full error body, in `response.body`)."""
    return {"code": code, "message": message}


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
