"""A fake OpenAI-compatible upstream: a real HTTP server on 127.0.0.1 that streams scripted replies.

    with FakeOpenAI(Reply(text="Hello there", hold=True)) as fake:
        model = OpenAIModel(provider="openai", base_url=fake.base_url, model="m")
        ...                      # first token arrives while the stream is held
        fake.release()           # let the rest through
        fake.disconnected.wait(2)  # or: the client closed early, and the upstream noticed

Each request takes the next `Reply` from a queue (`enqueue`), then falls back to `default`; a
reply may also be a function of the request, for fakes that answer from what they were sent.
`POST .../chat/completions` streams SSE chunks (one flushed HTTP chunk each) when the body says
`stream: true`, and answers with one `chat.completion` JSON otherwise. Faults: `status` with a
JSON error, `body` (raw garbage), `drop_after` (connection cut mid-stream), `stall` (headers,
then nothing), delays, and the `hold` gate. All waits notice a client disconnect at once.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.http_server import FakeBase, Request, Response, json_bytes, word_pieces


@dataclass
class ToolCall:
    name: str
    arguments: str  # JSON text
    id: str = ""


@dataclass
class Reply:
    text: str = "Hello from the fake model."
    #: Content pieces, one per SSE chunk; default: `text` split into words (spaces lead).
    chunks: list[str] | None = None
    finish_reason: str | None = "stop"  # None: never send one
    n: int | None = None  # choices; default: the request's `n`
    tool_calls: list[ToolCall] = field(default_factory=list)
    fragment: int = 7  # tool-call arguments are streamed in pieces of this many characters
    usage: bool = True  # send the usage chunk (when the request asks with stream_options)
    prompt_tokens: int = 11
    cached_tokens: int = 0  # of prompt_tokens: sent as usage.prompt_tokens_details.cached_tokens
    completion_tokens: int | None = None  # default: content chunks times choices
    done: bool = True  # end with `data: [DONE]`
    # Reasoning models (vLLM, DeepSeek): reasoning deltas before the content, under this key.
    reasoning: str | None = None
    reasoning_key: str = "reasoning_content"
    cached_tokens: int | None = None  # usage.prompt_tokens_details.cached_tokens
    comments: bool = False  # interleave `: keep-alive` comments and `event:` lines
    # Pacing and control.
    delay_headers_s: float = 0.0  # before the status line
    delay_first_s: float = 0.0  # after the headers, before the first chunk
    delay_s: float = 0.0  # between content chunks
    hold: bool = False  # after the first content chunk, wait for `release()`
    stall: bool = False  # send the headers, then nothing until the client leaves
    # Faults.
    status: int = 200
    error: str = "fake upstream error"  # error.message when status != 200
    error_type: str | None = None  # default: from the status, as OpenAI does
    body: bytes | None = None  # send this raw body (status `status`) instead of a reply
    content_type: str = "text/event-stream"
    drop_after: int | None = None  # cut the connection after this many content chunks
    stream_error: str | None = None  # send `data: {"error": ...}` after the content
    headers: dict[str, str] = field(default_factory=dict)

    def pieces(self) -> list[str]:
        return word_pieces(self.text, self.chunks)


Behaviour = Reply | Callable[[Request], Reply]


class FakeOpenAI(FakeBase):
    def __init__(
        self, *replies: Behaviour, default: Behaviour | None = None, model: str = "fake-model"
    ) -> None:
        super().__init__()
        self.queue: deque[Behaviour] = deque(replies)
        self.default: Behaviour = default if default is not None else Reply()
        self.model = model
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def enqueue(self, *replies: Behaviour) -> None:
        """Script the next requests, in order; after them, `default` answers."""
        with self._lock:
            self.queue.extend(replies)

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.queue.clear()

    def _next(self, request: Request) -> Reply:
        with self._lock:
            behaviour = self.queue.popleft() if self.queue else self.default
        return behaviour(request) if callable(behaviour) else behaviour

    async def handle(self, request: Request, response: Response) -> None:
        if request.method == "GET" and request.path.endswith("/models"):
            data = {"object": "list", "data": [{"id": self.model, "object": "model"}]}
            await response.full(200, json_bytes(data), {"Content-Type": "application/json"})
            return
        if request.method != "POST" or not request.path.endswith("/chat/completions"):
            await response.full(404, json_bytes({"error": {"message": "not found"}}))
            return
        reply = self._next(request)
        body = request.json() or {}
        await response.sleep(reply.delay_headers_s)
        if reply.body is not None:
            await response.full(
                reply.status, reply.body, {"Content-Type": reply.content_type, **reply.headers}
            )
            return
        if reply.status != 200:
            kind = reply.error_type or _error_type(reply.status)
            error = {"error": {"message": reply.error, "type": kind, "code": None}}
            headers = {"Content-Type": "application/json", **reply.headers}
            await response.full(reply.status, json_bytes(error), headers)
            return
        if body.get("stream"):
            await self._stream(reply, body, response)
        else:
            await self._complete(reply, body, response)

    # --- streaming -------------------------------------------------------------------------------

    async def _stream(self, reply: Reply, body: dict[str, Any], response: Response) -> None:
        n = reply.n if reply.n is not None else int(body.get("n") or 1)
        created = int(time.time())
        model = body.get("model") or self.model

        def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            data = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": choices,
                **extra,
            }
            return b"data: " + json_bytes(data) + b"\n\n"

        await response.start(200, {"Content-Type": reply.content_type, **reply.headers})
        if reply.stall:
            await self.stall(response)
        await response.sleep(reply.delay_first_s)
        role = [
            {"index": i, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
            for i in range(n)
        ]
        await response.write(chunk(role))

        sent = 0  # content-bearing chunks written

        async def content(data: bytes) -> None:
            nonlocal sent
            if reply.drop_after is not None and sent >= reply.drop_after:
                response.drop()
                raise _Dropped
            if sent and reply.delay_s:
                await response.sleep(reply.delay_s)
            if reply.comments:
                await response.write(b": keep-alive\n\nevent: message\n")
            await response.write(data)
            sent += 1
            if sent == 1:
                self.first_token_sent.set()
                if reply.hold:
                    await self.hold_at_gate(response)

        try:
            if reply.reasoning is not None:
                for piece in word_pieces(reply.reasoning, None):
                    delta = {reply.reasoning_key: piece}
                    await content(
                        chunk([{"index": i, "delta": delta, "finish_reason": None} for i in range(n)])
                    )
            pieces = reply.pieces()
            for piece in pieces:
                await content(
                    chunk(
                        [{"index": i, "delta": {"content": piece}, "finish_reason": None} for i in range(n)]
                    )
                )
            for position, call in enumerate(reply.tool_calls):
                call_id = call.id or f"call_fake{position}"
                args = call.arguments
                frags = [args[i : i + reply.fragment] for i in range(0, len(args), reply.fragment)] or [""]
                for number, frag in enumerate(frags):
                    fn: dict[str, Any] = {"arguments": frag}
                    tc: dict[str, Any] = {"index": position, "function": fn}
                    if number == 0:
                        tc.update(id=call_id, type="function")
                        fn["name"] = call.name
                    await content(
                        chunk(
                            [
                                {"index": i, "delta": {"tool_calls": [tc]}, "finish_reason": None}
                                for i in range(n)
                            ]
                        )
                    )
            if reply.drop_after is not None and sent >= reply.drop_after:
                response.drop()
                raise _Dropped
        except _Dropped:
            return
        if reply.stream_error is not None:
            await response.write(b"data: " + json_bytes({"error": {"message": reply.stream_error}}) + b"\n\n")
            await response.end()
            return
        if reply.finish_reason is not None:
            await response.write(
                chunk([{"index": i, "delta": {}, "finish_reason": reply.finish_reason} for i in range(n)])
            )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        if reply.usage and include_usage:
            completion = reply.completion_tokens
            if completion is None:
                completion = n * (len(pieces) + len(reply.tool_calls))
            usage: dict[str, Any] = {
                "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": completion,
                "total_tokens": reply.prompt_tokens + completion,
            }
            if reply.cached_tokens is not None:
                usage["prompt_tokens_details"] = {"cached_tokens": reply.cached_tokens}
            await response.write(chunk([], usage=usage))
        if reply.done:
            await response.write(b"data: [DONE]\n\n")
        await response.end()

    # --- non-streaming ---------------------------------------------------------------------------

    async def _complete(self, reply: Reply, body: dict[str, Any], response: Response) -> None:
        n = reply.n if reply.n is not None else int(body.get("n") or 1)
        await response.sleep(reply.delay_first_s)
        if reply.stall:
            await self.stall(response)
        if reply.hold:
            await self.hold_at_gate(response)
        message: dict[str, Any] = {"role": "assistant", "content": "".join(reply.pieces())}
        if reply.reasoning is not None:
            message[reply.reasoning_key] = reply.reasoning
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": c.id or f"call_fake{i}",
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for i, c in enumerate(reply.tool_calls)
            ]
        completion = reply.completion_tokens
        if completion is None:
            completion = n * (len(reply.pieces()) + len(reply.tool_calls))
        data = {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or self.model,
            "choices": [
                {"index": i, "message": message, "finish_reason": reply.finish_reason or "stop"}
                for i in range(n)
            ],
        }
        if reply.usage:
            data["usage"] = {
                "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": completion,
                "total_tokens": reply.prompt_tokens + completion,
            }
            if reply.cached_tokens is not None:
                data["usage"]["prompt_tokens_details"] = {"cached_tokens": reply.cached_tokens}
        await response.full(200, json_bytes(data), {"Content-Type": "application/json", **reply.headers})


class _Dropped(Exception):
    pass


def _error_type(status: int) -> str:
    if status == 429:
        return "rate_limit_error"
    if status in (401, 403):
        return "authentication_error"
    return "server_error" if status >= 500 else "invalid_request_error"
