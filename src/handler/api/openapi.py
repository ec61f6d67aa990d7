"""The OpenAPI document says what the API really answers: the error statuses every route can return
(with the `{"error": {...}}` body), and not FastAPI's 422, which this API never uses (a bad body is a
400 that names the field). The fuzzing suite (tests/fuzz) holds every response to this document.

A route names the errors it documents itself with `error_docs` (its own words where they say more);
`document_errors` adds the common ones to every operation.
"""

from __future__ import annotations

from typing import Any

from handler.contract.errors import ErrorBody, ErrorResponse

# Statuses any authenticated route can answer, whatever it does.
COMMON_ERRORS: dict[str, str] = {
    "400": "Invalid request (the field is named in `error.param`)",
    "401": "Missing, unknown or revoked API key",
    "404": "Unknown project, model or record, or another project's: the same answer (`EntityNotFound:`)",
    "413": "Request body too large",
    "500": "Internal error (the body says nothing of its cause)",
    "503": "The API key could not be verified right now; retry",
}
# The other statuses a route may document, in the same standard words.
_ROUTE_ERRORS: dict[str, str] = {
    "409": "Conflict with the resource's current state",
    "429": "Rate limited",
    "502": "Upstream failed",
    "504": "Upstream timed out",
}
_ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}

#: A FastAPI route's `responses`, as `error_docs` builds them.
ErrorDocs = dict[int | str, dict[str, Any]]


def error_docs(*statuses: int | tuple[int, str]) -> ErrorDocs:
    """A route's `responses` for its error statuses, each with the `ErrorResponse` body: a status
    in the standard words (`COMMON_ERRORS`), or `(status, description)` in the route's own.

        responses=error_docs(400, (404, "No such file for this key (`EntityNotFound:`)"))
    """
    docs: ErrorDocs = {}
    for entry in statuses:
        status, description = entry if isinstance(entry, tuple) else (entry, None)
        if description is None:
            description = COMMON_ERRORS.get(str(status)) or _ROUTE_ERRORS[str(status)]
        docs[status] = {"model": ErrorResponse, "description": description}
    return docs


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the common error responses to every operation, drop 422 and its unused schemas."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("ErrorBody", ErrorBody.model_json_schema())
    components.setdefault(
        "ErrorResponse",
        {
            "title": "ErrorResponse",
            "type": "object",
            "properties": {"error": {"$ref": "#/components/schemas/ErrorBody"}},
            "required": ["error"],
        },
    )
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            responses.pop("422", None)
            for status, description in COMMON_ERRORS.items():
                responses.setdefault(
                    status,
                    {"description": description, "content": {"application/json": {"schema": _ERROR_REF}}},
                )
    text = repr(schema.get("paths", {}))
    for unused in ("HTTPValidationError", "ValidationError"):
        if f"#/components/schemas/{unused}" not in text:
            components.pop(unused, None)
    return schema
