"""The FastAPI application: routes, error mapping, and the request clock. No AWS call here."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from handler.api import errors
from handler.api.auth import authenticate
from handler.api.routes import (
    batches,
    campaigns,
    chat,
    comparison,
    feedback,
    files,
    models,
    queries,
    records,
    usage,
)
from handler.contract.errors import error_body
from handler.settings import get_settings

if TYPE_CHECKING:
    from handler.api.deps import ServicesFactory


class RequestClock:
    """Stamps each request's arrival (the TTFT clock) and refuses oversized bodies with a 413.

    Pure ASGI (no BaseHTTPMiddleware): it must not buffer streamed responses.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})["received_at"] = time.perf_counter()
        limit = self.max_body_bytes
        content_type = None
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await self._too_large(send, limit)
                return
            if name == b"content-type":
                content_type = value
        if scope["method"] == "POST" and content_type in (None, b"application/x-www-form-urlencoded"):
            # `curl -d` sends a form content type; the body is JSON all the same.
            headers = [(n, v) for n, v in scope.get("headers", ()) if n != b"content-type"]
            scope["headers"] = [*headers, (b"content-type", b"application/json")]
        if not any(name == b"content-length" for name, _ in scope.get("headers", ())):
            # A chunked body has no length to check up front: read it here, up to the limit, so
            # that an oversized one is a 413 (raised inside the app's body read, FastAPI would
            # turn it into a 400 "error parsing the body"). Request bodies are small; responses
            # are never buffered.
            buffered = await self._read_body(receive, limit)
            if buffered is None:
                await self._too_large(send, limit)
                return
            receive = self._replay(buffered, receive)
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    from handler.errors import PayloadTooLarge

                    raise PayloadTooLarge(f"request body exceeds {limit} bytes", param="body")
            return message

        await self.app(scope, counting_receive, send)

    @staticmethod
    async def _read_body(receive: Receive, limit: int) -> list[Message] | None:
        """The request's messages, body complete; None once the body is over `limit` bytes."""
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return messages  # the client left
            size += len(message.get("body", b""))
            if size > limit:
                return None
            if not message.get("more_body", False):
                return messages

    @staticmethod
    def _replay(messages: list[Message], receive: Receive) -> Receive:
        """Hand the buffered body over as one message, then the live channel (disconnects)."""
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]
        pending += [m for m in messages if m["type"] != "http.request"]

        async def replay() -> Message:
            return pending.pop(0) if pending else await receive()

        return replay

    @staticmethod
    async def _too_large(send: Send, limit: int) -> None:
        import orjson

        body = orjson.dumps(
            error_body(
                f"request body exceeds {limit} bytes", "invalid_request_error", "payload_too_large", "body"
            )
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def create_app(services: ServicesFactory) -> FastAPI:
    """The app; `services` builds what the routes use, on the first request (`handler/wiring.py`)."""
    app = FastAPI(
        title="Chat Gateway",
        version="0.1.0",
        description="Serverless chat-completions gateway: POST /api/v1/chat/completions.",
    )
    app.state.services_factory = services
    app.state.services = None
    errors.install(app)
    api = [Depends(authenticate)]
    app.include_router(chat.router, dependencies=api)
    app.include_router(records.router, dependencies=api)
    app.include_router(feedback.router, dependencies=api)
    app.include_router(comparison.router, dependencies=api)
    app.include_router(campaigns.router, dependencies=api)
    app.include_router(queries.router, dependencies=api)
    app.include_router(batches.router, dependencies=api)
    app.include_router(usage.router, dependencies=api)
    app.include_router(files.router, dependencies=api)
    app.include_router(models.router, dependencies=api)

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    generate_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        """FastAPI's document, with the error responses every route really has (api/openapi.py)."""
        if app.openapi_schema is None:
            from handler.api.openapi import document_errors

            app.openapi_schema = document_errors(generate_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(RequestClock, max_body_bytes=get_settings().max_body_bytes)
    return app
