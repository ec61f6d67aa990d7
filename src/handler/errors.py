"""Domain errors. They know nothing of HTTP; `api/errors.py` maps each to a status and body."""

from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    """Base of every error the gateway reports to a client on purpose."""

    status = 500
    type = "internal_error"
    code = "internal_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.attempts: list[Any] = []  # the models tried before giving up, for the stored record
        if code is not None:
            self.code = code


class InvalidRequest(GatewayError):
    status = 400
    type = "invalid_request_error"
    code = "invalid_request"


class Unauthorized(GatewayError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class NotFound(GatewayError):
    """Unknown project, model, completion, session or campaign. adaptive-sdk keys on the prefix."""

    status = 404
    type = "not_found_error"
    code = "not_found"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(f"EntityNotFound: {message}", param=param, code=code)


class Conflict(GatewayError):
    status = 409
    type = "invalid_request_error"
    code = "conflict"


class PayloadTooLarge(GatewayError):
    status = 413
    type = "invalid_request_error"
    code = "payload_too_large"


class RateLimited(GatewayError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limited"


class StoreUnavailable(GatewayError):
    """The store could not be read or written right now (an outage, throttling, a timeout): the
    client may retry; api/errors.py answers 503 with `Retry-After`."""

    status = 503
    type = "api_error"
    code = "store_unavailable"


class UpstreamError(GatewayError):
    """The model provider failed. Messages never carry upstream URLs, keys or traces."""

    status = 502
    type = "upstream_error"
    code = "upstream_error"


class UpstreamTimeout(GatewayError):
    status = 504
    type = "upstream_error"
    code = "upstream_timeout"


class TTFTExceeded(UpstreamTimeout):
    code = "ttft_exceeded"


class ConfigError(GatewayError):
    """A project's stored config is invalid: the operator's problem, reported without leaking it."""

    status = 500
    type = "config_error"
    code = "invalid_project_config"
