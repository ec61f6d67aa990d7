"""`POST /api/v1/chat/completions`: one JSON answer, or an SSE stream when `stream: true`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from handler import ready
from handler.api.auth import caller_of
from handler.api.deps import ServiceDep
from handler.api.openapi import error_docs
from handler.contract.chat import ChatRequest, ChatResponse

router = APIRouter()

_ERRORS = error_docs(
    400,
    401,
    (404, "Unknown project, model or campaign, or another project's (`EntityNotFound:`)"),
    413,
    429,
    502,
    (504, "Upstream timed out (including `ttft_exceeded`)"),
)


T = TypeVar("T")


async def unless_disconnected(request: Request, work: Coroutine[Any, Any, T]) -> T | Response:
    """Run `work`, but cancel it (closing the upstream call: we stop paying) if the client leaves.

    The body is already read, so the next ASGI message can only be `http.disconnect`. Under Mangum
    it never comes before the response: there the work simply runs to its end. The work runs in
    this task; a watcher is started only once it has to wait (a model that answers without I/O,
    as the echo does, costs no task), and a client gone cancels this task, then says 499.
    """
    got = ready.run_now(work)
    if not isinstance(got, ready.Pending):
        return got
    this = asyncio.current_task()
    assert this is not None
    left = False

    async def watch() -> None:
        nonlocal left
        while (await request.receive())["type"] != "http.disconnect":
            pass
        left = True
        this.cancel()

    watcher = asyncio.ensure_future(watch())
    try:
        return await got
    except asyncio.CancelledError:
        if not left or this.cancelling() > 1:
            raise  # we are being cancelled ourselves
        this.uncancel()
        return Response(status_code=499)  # nginx's "client closed request": nobody reads it
    finally:
        watcher.cancel()


def ignored_header(body: ChatRequest) -> str | None:
    """Top-level fields this API does not know (accepted, ignored), named back to the client.

    Field names are the client's JSON keys: any text. A header value must be latin-1 without
    control characters, so they are escaped (`\\n`, `\\xe9`) rather than crash the response.
    """
    ignored = sorted(body.model_extra or ())
    if not ignored:
        return None
    return ",".join(name.encode("unicode_escape").decode("ascii") for name in ignored)[:1024]


@router.post(
    "/api/v1/chat/completions",
    response_model=ChatResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "JSON, or SSE when stream=true"},
        **_ERRORS,
    },
    summary="Generate chat completion",
)
async def create_chat_completion(body: ChatRequest, request: Request, service: ServiceDep) -> Response:
    received_at: float = getattr(request.state, "received_at", None) or time.perf_counter()
    plan = await service.plan(body, received_at, caller_of(request))
    headers: dict[str, str] = {}
    ignored = ignored_header(body)
    if ignored:
        headers["X-Ignored-Fields"] = ignored
    if plan.stream:
        from handler.api.streaming import stream_response

        return await unless_disconnected(request, stream_response(service, plan, headers))
    outcome = await unless_disconnected(request, service.complete(plan))
    if isinstance(outcome, Response):
        return outcome
    if outcome.ttft_ms is not None:
        headers["X-TTFT-Ms"] = f"{outcome.ttft_ms:.1f}"
    return Response(
        orjson.dumps(outcome.response().model_dump(exclude_none=True)),
        media_type="application/json",
        headers=headers,
    )
