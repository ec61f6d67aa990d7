"""The FastAPI application: routes, error mapping, and the request clock. No AWS call here."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from handler.api import errors
from handler.api.auth import authenticate
from handler.api.routes import campaigns, chat, feedback, queries, records
from handler.settings import get_settings

if TYPE_CHECKING:
    from handler.completions.service import CompletionService


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
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await self._too_large(send, limit)
                return
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
    async def _too_large(send: Send, limit: int) -> None:
        import orjson

        body = orjson.dumps(
            errors.error_body(
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


def create_app(service: CompletionService | None = None) -> FastAPI:
    app = FastAPI(
        title="Chat Gateway",
        version="0.1.0",
        description="Serverless chat-completions gateway: POST /api/v1/chat/completions.",
    )
    app.state.service = service
    errors.install(app)
    api = [Depends(authenticate)]
    app.include_router(chat.router, dependencies=api)
    app.include_router(records.router, dependencies=api)
    app.include_router(feedback.router, dependencies=api)
    app.include_router(campaigns.router, dependencies=api)
    app.include_router(queries.router, dependencies=api)

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(RequestClock, max_body_bytes=get_settings().max_body_bytes)
    return app
