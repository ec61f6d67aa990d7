"""`stream: true`: the answer as Server-Sent Events, the first token sent the moment it exists.

`stream_response` waits for a model to produce its first content token (`service.start`, which
enforces `max_ttft_ms` and tries the fallbacks) before it returns a response at all: until then
the status is not sent, so any failure is still a plain JSON error with its status. After it, a
failure is one `data: {"error": ...}` event then `data: [DONE]`.

This module only turns the answer's events into bytes and watches the client: the answer's
lifecycle (outcome, usage, the final record) is the service's `Answer`. The response is a
plain-asyncio ASGI app rather than Starlette's `StreamingResponse`: it relays events in one task and
watches for the client leaving in another, so a client that disconnects while the model is quiet
still cancels the upstream call at once, and the final record (completed, failed or cancelled, with
the partial text) is written before the response ends (Lambda freezes the process once it has) and
never on the way to the first token.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from handler import ready
from handler.contract import sse
from handler.errors import GatewayError, UpstreamError
from handler.observability import logger
from handler.providers.base import Finish, ReasoningDelta, ReasoningDone, TextDelta, ToolCallsDone
from handler.settings import get_settings

if TYPE_CHECKING:
    from handler.completions.planning import Plan
    from handler.completions.service import Answer, CompletionService

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
BATCH = 64  # events per body message at most, when many are ready at once (~16 KB of chunks)
_clock = time.monotonic


async def stream_response(service: CompletionService, plan: Plan, headers: dict[str, str]) -> Response:
    """The SSE response, once the first token exists; a GatewayError (JSON error) if none came."""
    answer = await service.start(plan)
    out = {**headers, **SSE_HEADERS}
    if answer.outcome.ttft_ms is not None:
        out["X-TTFT-Ms"] = f"{answer.outcome.ttft_ms:.1f}"
    return SSEResponse(Relay(plan, answer, get_settings().sse_keepalive_s), out)


class Relay:
    """An answer's events as SSE chunks, for one request."""

    def __init__(self, plan: Plan, answer: Answer, keepalive_s: float = 0.0) -> None:
        self.plan = plan
        self.answer = answer
        self.keepalive_s = keepalive_s  # 0: no keep-alive comments
        self._sent_at = 0.0
        self.format = sse.ChunkFormatter(
            plan.request_id,
            plan.created,
            plan.public_model(answer.model_name),
            plan.session_id,
            plan.choice_ids,
        )

    async def run(self, send: Send, headers: list[tuple[bytes, bytes]]) -> None:
        """Send the whole response. Raises CancelledError (or OSError) when the client left."""
        async with self.answer as answer:
            try:
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                self._sent_at = _clock()
                pinger = asyncio.ensure_future(self._keep_alive(send)) if self.keepalive_s > 0 else None
                try:
                    tail = await self._relay(send)
                except GatewayError as exc:
                    tail = self._failed(exc)
                except (asyncio.CancelledError, OSError):
                    raise
                except Exception as exc:  # a provider bug must still end the stream properly
                    logger.exception("stream failed", extra={"error_type": type(exc).__name__})
                    tail = self._failed(UpstreamError("the model provider failed mid-answer"))
                finally:
                    if pinger is not None:  # stopped before the last message: nothing may follow it
                        pinger.cancel()
                        with contextlib.suppress(asyncio.CancelledError, OSError):
                            await pinger
                await answer.close()  # stored before the last bytes: the invocation may end right after
                await send({"type": "http.response.body", "body": tail + sse.DONE, "more_body": False})
            except OSError:
                answer.client_left()  # the send failed: nobody is reading any more
                raise

    async def _relay(self, send: Send) -> bytes:
        """Send the events' chunks as they come; returns the usage chunk (if asked for), sent with `[DONE]`.

        Events already parsed from what the provider has buffered go out together, in one body
        message (one write, one HTTP chunk) of at most `BATCH` events; the first event, an event that
        is alone, or the last ready one before the model's next I/O, is sent at once.
        """
        fmt = self.format
        answer = self.answer
        events = aiter(answer)
        parts: list[bytes] = []
        limit = 1  # the first event goes out alone, the moment it exists; then up to BATCH at once
        body: bytes
        while True:
            try:
                got = ready.next_now(events)
            except StopAsyncIteration:
                break
            except Exception:  # a failure mid-answer: what came before it still goes out first
                if parts:
                    await self._send(send, parts)
                raise
            if isinstance(got, ready.Pending):  # the next event needs I/O: send what is ready first
                if parts:
                    try:
                        await self._send(send, parts)
                    except BaseException as exc:
                        await got.abandon(exc)
                        raise
                    parts = []
                try:
                    event = await got
                except StopAsyncIteration:
                    break
            else:
                event = got
            if type(event) is TextDelta:  # the hot path: one pre-built chunk per token
                body = fmt.content(event.index, event.text)
            elif isinstance(event, ToolCallsDone):
                body = fmt.tool_calls(event.index, answer.outcome.choices[event.index].tool_calls or [])
            elif isinstance(event, Finish):
                body = fmt.finish(event.index, event.reason)
            elif isinstance(event, ReasoningDelta):
                body = fmt.reasoning(event.index, event.text, event.key)
            elif isinstance(event, ReasoningDone):
                body = fmt.thinking_block(event.index, event.block)
            else:
                continue  # usage and server-side tool runs are for the record only
            parts.append(body)
            if len(parts) >= limit:
                await self._send(send, parts)
                parts, limit = [], BATCH
        if parts:
            await self._send(send, parts)
        if self.plan.include_usage:
            outcome = answer.outcome
            return fmt.usage(outcome.prompt_tokens, outcome.completion_tokens, outcome.cached_tokens)
        return b""

    async def _send(self, send: Send, parts: list[bytes]) -> None:
        body = parts[0] if len(parts) == 1 else b"".join(parts)
        await send({"type": "http.response.body", "body": body, "more_body": True})
        self._sent_at = _clock()

    async def _keep_alive(self, send: Send) -> None:
        """A `: keep-alive` comment whenever nothing was sent for `keepalive_s` (a long tool round):
        API Gateway cuts a streamed response after 5 minutes idle. Costs the relay one clock read
        per body message, nothing per token."""
        interval = self.keepalive_s
        while True:
            idle = _clock() - self._sent_at
            if idle >= interval:
                await send({"type": "http.response.body", "body": sse.KEEP_ALIVE, "more_body": True})
                self._sent_at = _clock()
                idle = 0.0
            await asyncio.sleep(interval - idle)

    def _failed(self, exc: GatewayError) -> bytes:
        self.answer.fail(exc)
        logger.warning("stream failed after its first token", extra={"code": exc.code, "error": exc.message})
        return sse.error_event(exc.message, exc.type, exc.code)


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
                await relay  # leaving the answer closes the upstream and stores the record
            with contextlib.suppress(asyncio.CancelledError):
                await watch


async def _client_gone(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
