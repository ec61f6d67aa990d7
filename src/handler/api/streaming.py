"""`stream: true`: the answer as Server-Sent Events, the first token sent the moment it exists.

`stream_response` waits for a model to produce its first content token (`service.start`, which
enforces `max_ttft_ms` and tries the fallbacks) before it returns a response at all: until then
the status is not sent, so any failure is still a plain JSON error with its status. After it, a
failure is one `data: {"error": ...}` event then `data: [DONE]`.

The response is a plain-asyncio ASGI app rather than Starlette's `StreamingResponse`: it relays
events in one task and watches for the client leaving in another, so a client that disconnects
while the model is quiet still cancels the upstream call at once, and the final record
(completed, failed or cancelled, with the partial text) is written before the response ends
(Lambda freezes the process once it has) and never on the way to the first token.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from handler.completions.service import Outcome
from handler.contract import sse
from handler.errors import GatewayError, UpstreamError
from handler.observability import logger
from handler.providers.base import Finish, TextDelta, ToolCallsDone, UsageReport
from handler.providers.tokens import count_tokens

if TYPE_CHECKING:
    from handler.completions.engine import Started
    from handler.completions.planning import Plan
    from handler.completions.service import CompletionService

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


async def stream_response(service: CompletionService, plan: Plan, headers: dict[str, str]) -> Response:
    """The SSE response, once the first token exists; a GatewayError (JSON error) if none came."""
    started = await service.start(plan)
    relay = Relay(service, plan, started)
    out = {**headers, **SSE_HEADERS}
    if started.ttft_ms is not None:
        out["X-TTFT-Ms"] = f"{started.ttft_ms:.1f}"
    return SSEResponse(relay, out)


class Relay:
    """Provider events to SSE chunks for one request, and the request's final record."""

    def __init__(self, service: CompletionService, plan: Plan, started: Started) -> None:
        self.service = service
        self.plan = plan
        self.started = started
        outcome = Outcome.empty(plan, started.model_name)
        outcome.ttft_ms, outcome.attempts = started.ttft_ms, started.attempts
        self.outcome = outcome
        self.format = sse.ChunkFormatter(
            plan.request_id,
            plan.created,
            plan.public_model(started.model_name),
            plan.session_id,
            [c.completion_id for c in outcome.choices],
        )
        self._usage_seen = False
        self._closed = False

    async def run(self, send: Send, headers: list[tuple[bytes, bytes]]) -> None:
        """Send the whole response. Raises CancelledError (or OSError) when the client left."""
        outcome = self.outcome
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            tail = sse.DONE
            try:
                await self._relay(send)
            except GatewayError as exc:
                tail = self._failed(exc) + sse.DONE
            except (asyncio.CancelledError, OSError):
                raise
            except Exception as exc:  # a provider bug must still end the stream properly
                logger.exception("stream failed", extra={"error_type": type(exc).__name__})
                tail = self._failed(UpstreamError("the model provider failed mid-answer")) + sse.DONE
            await self.close()  # stored before the last bytes: the invocation may end right after
            await send({"type": "http.response.body", "body": tail, "more_body": False})
        except BaseException:
            if not self._closed:
                outcome.status = "cancelled"
            raise
        finally:
            await self.close()

    async def _relay(self, send: Send) -> None:
        outcome, fmt = self.outcome, self.format
        choices = outcome.choices
        finished = [False] * len(choices)
        body: bytes
        async for event in self.started.events():
            if type(event) is TextDelta:  # the hot path: one pre-built chunk per token
                if event.text:
                    choices[event.index].parts.append(event.text)
                    body = fmt.content(event.index, event.text)
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                continue
            outcome.apply(event)
            if isinstance(event, ToolCallsDone):
                body = fmt.tool_calls(event.index, choices[event.index].tool_calls or [])
            elif isinstance(event, Finish):
                if finished[event.index]:
                    continue
                finished[event.index] = True
                body = fmt.finish(event.index, event.reason)
            else:
                self._usage_seen = self._usage_seen or isinstance(event, UsageReport)
                continue  # usage and server-side tool runs are for the record only
            await send({"type": "http.response.body", "body": body, "more_body": True})

        tail = b""
        for index, done in enumerate(finished):
            if not done:  # the provider ended without a finish: the choice still gets its last chunk
                choices[index].finish_reason = "stop"
                tail += fmt.finish(index, "stop")
        self._estimate_usage()
        if self.plan.include_usage:
            tail += fmt.usage(outcome.prompt_tokens, outcome.completion_tokens)
        if tail:
            await send({"type": "http.response.body", "body": tail, "more_body": True})

    def _failed(self, exc: GatewayError) -> bytes:
        outcome = self.outcome
        outcome.status, outcome.error = "failed", exc
        logger.warning("stream failed after its first token", extra={"code": exc.code, "error": exc.message})
        return sse.error_event(exc.message, exc.type, exc.code)

    def _estimate_usage(self) -> None:
        """Usage is always stored: estimated when the stream ended before the provider reported it."""
        if self._usage_seen:
            return
        outcome, call = self.outcome, self.plan.call
        outcome.prompt_tokens = count_tokens(call.system or "") + sum(
            count_tokens(_text(m.get("content"))) for m in call.messages
        )
        outcome.completion_tokens = sum(count_tokens(c.content) for c in outcome.choices)

    async def close(self) -> None:
        """Close the upstream call (stop paying for it), then store the final record. Once."""
        if self._closed:
            return
        self._closed = True
        outcome = self.outcome
        outcome.finished_at = time.perf_counter()
        # Shielded: a second cancellation (server shutdown) must not lose the record.
        await asyncio.shield(self._finish())

    async def _finish(self) -> None:
        await self.started.aclose()
        self._estimate_usage()
        await self.service.save(self.outcome)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


class SSEResponse(Response):
    """Runs a `Relay` while watching for the client leaving; a client gone cancels the relay."""

    media_type = "text/event-stream"

    def __init__(self, relay: Relay, headers: dict[str, str]) -> None:
        self.relay = relay
        self.status_code = 200
        self.background = None
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        relay = asyncio.ensure_future(self.relay.run(send, self.raw_headers))
        watch = asyncio.ensure_future(_client_gone(receive))
        try:
            await asyncio.wait({relay, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not relay.done():  # the client left (or we are being shut down): stop the upstream
                relay.cancel()
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await relay  # its own `finally` closes the upstream and stores the record
            with contextlib.suppress(asyncio.CancelledError):
                await watch


async def _client_gone(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
