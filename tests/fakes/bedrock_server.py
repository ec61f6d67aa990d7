"""A fake Amazon Bedrock runtime: a real HTTP server on 127.0.0.1 speaking binary event streams.

    with FakeBedrock(BedrockReply(text="Hi there")) as fake:
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", fake.url)
        handler.aws.reset_clients()
        ...

`POST /model/{modelId}/converse-stream` answers with `application/vnd.amazon.eventstream` frames
(messageStart, contentBlockStart/Delta/Stop, messageStop, metadata) written one flushed HTTP chunk
each, so botocore's real parser decodes them as they arrive; `POST /model/{modelId}/converse`
answers with the JSON output. Errors come the way botocore reads them (status, `x-amzn-ErrorType`
and a JSON `message`), in-stream exceptions as `:message-type: exception` frames. The requests
are recorded (`bodies`, `model_ids`) so tests can assert the Converse request shape. Replies are
queued like `FakeOpenAI`'s, with the same gate, stall, drop and disconnect controls.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes import eventstream
from tests.fakes.http_server import FakeBase, Request, Response, json_bytes, word_pieces

_PATH = re.compile(r"^/model/(?P<model>.+)/(?P<op>converse-stream|converse)$")

ERROR_STATUS = {
    "ThrottlingException": 429,
    "ValidationException": 400,
    "AccessDeniedException": 403,
    "ResourceNotFoundException": 404,
    "ServiceUnavailableException": 503,
    "InternalServerException": 500,
    "ModelNotReadyException": 429,
    "ModelTimeoutException": 408,
    "ModelErrorException": 424,
}


@dataclass
class ToolUse:
    name: str
    input: str  # JSON text, streamed in fragments
    id: str = ""


@dataclass
class BedrockReply:
    text: str = "Hello from fake Bedrock."
    chunks: list[str] | None = None  # one contentBlockDelta each; default: words
    stop_reason: str | None = "end_turn"  # None: no messageStop event
    tool_uses: list[ToolUse] = field(default_factory=list)
    fragment: int = 7
    usage: bool = True  # send the metadata event
    input_tokens: int = 13
    cache_read_tokens: int = 0  # sent as usage.cacheReadInputTokens (beside inputTokens, as Converse does)
    output_tokens: int | None = None  # default: number of deltas
    # Pacing and control.
    delay_headers_s: float = 0.0
    delay_first_s: float = 0.0
    delay_s: float = 0.0
    hold: bool = False  # after the first delta, wait for `release()`
    stall: bool = False  # headers, then nothing until the client leaves
    # Faults.
    error_type: str | None = None  # e.g. "ThrottlingException": an HTTP error before the stream
    status: int | None = None  # default: ERROR_STATUS[error_type]
    error: str = "fake bedrock error"
    exception_after: int | None = None  # after this many deltas, an in-stream exception frame
    exception_type: str = "modelStreamErrorException"
    corrupt_after: int | None = None  # after this many deltas, a frame with a broken CRC
    drop_after: int | None = None  # after this many deltas, cut the connection
    body: bytes | None = None  # raw body with status 200 (garbage)

    def pieces(self) -> list[str]:
        return word_pieces(self.text, self.chunks)


Behaviour = BedrockReply | Callable[[Request], BedrockReply]


class FakeBedrock(FakeBase):
    def __init__(self, *replies: Behaviour, default: Behaviour | None = None) -> None:
        super().__init__()
        self.queue: deque[Behaviour] = deque(replies)
        self.default: Behaviour = default if default is not None else BedrockReply()
        self._lock = threading.Lock()

    def enqueue(self, *replies: Behaviour) -> None:
        with self._lock:
            self.queue.extend(replies)

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.queue.clear()

    @property
    def model_ids(self) -> list[str]:
        """The model id of each request, URL-decoded."""
        ids = []
        for r in self.requests:
            m = _PATH.match(r.path)
            ids.append(m.group("model") if m else "")
        return ids

    def _next(self, request: Request) -> BedrockReply:
        with self._lock:
            behaviour = self.queue.popleft() if self.queue else self.default
        return behaviour(request) if callable(behaviour) else behaviour

    async def handle(self, request: Request, response: Response) -> None:
        match = _PATH.match(request.path)
        if request.method != "POST" or match is None:
            await self._error(response, 404, "UnknownOperationException", "no such operation")
            return
        reply = self._next(request)
        await response.sleep(reply.delay_headers_s)
        if reply.error_type is not None:
            status = reply.status or ERROR_STATUS.get(reply.error_type, 400)
            await self._error(response, status, reply.error_type, reply.error)
            return
        if reply.body is not None:
            headers = {"Content-Type": "application/vnd.amazon.eventstream"}
            await response.full(reply.status or 200, reply.body, headers)
            return
        if match.group("op") == "converse":
            await self._converse(reply, response)
        else:
            await self._stream(reply, response)

    async def _error(self, response: Response, status: int, error_type: str, message: str) -> None:
        headers = {
            "Content-Type": "application/json",
            "x-amzn-ErrorType": f"{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/",
            "x-amzn-RequestId": "fake-request-id",
        }
        await response.full(status, json_bytes({"message": message}), headers)

    async def _stream(self, reply: BedrockReply, response: Response) -> None:
        ev = eventstream.event
        await response.start(
            200, {"Content-Type": "application/vnd.amazon.eventstream", "x-amzn-RequestId": "fake-request-id"}
        )
        if reply.stall:
            await self.stall(response)
        await response.sleep(reply.delay_first_s)
        await response.write(ev("messageStart", {"role": "assistant"}))
        sent = 0

        async def delta(frame: bytes) -> bool:
            """Write one delta; False when a fault ended the stream instead."""
            nonlocal sent
            if reply.drop_after is not None and sent >= reply.drop_after:
                response.drop()
                return False
            if reply.exception_after is not None and sent >= reply.exception_after:
                await response.write(eventstream.exception(reply.exception_type, reply.error))
                await response.end()
                return False
            if reply.corrupt_after is not None and sent >= reply.corrupt_after:
                await response.write(eventstream.corrupt(frame))
                await response.end()
                return False
            if sent and reply.delay_s:
                await response.sleep(reply.delay_s)
            await response.write(frame)
            sent += 1
            if sent == 1:
                self.first_token_sent.set()
                if reply.hold:
                    await self.hold_at_gate(response)
            return True

        block = 0
        pieces = reply.pieces()
        for piece in pieces:
            if not await delta(
                ev("contentBlockDelta", {"contentBlockIndex": block, "delta": {"text": piece}})
            ):
                return
        if pieces:
            await response.write(ev("contentBlockStop", {"contentBlockIndex": block}))
            block += 1
        deltas = len(pieces)
        for position, use in enumerate(reply.tool_uses):
            start = {"toolUse": {"toolUseId": use.id or f"tooluse_fake{position}", "name": use.name}}
            await response.write(ev("contentBlockStart", {"contentBlockIndex": block, "start": start}))
            frags = [use.input[i : i + reply.fragment] for i in range(0, len(use.input), reply.fragment)]
            for frag in frags:
                body = {"contentBlockIndex": block, "delta": {"toolUse": {"input": frag}}}
                if not await delta(ev("contentBlockDelta", body)):
                    return
                deltas += 1
            await response.write(ev("contentBlockStop", {"contentBlockIndex": block}))
            block += 1
        if not await _fault_at_end(reply, sent, response):
            return
        if reply.stop_reason is not None:
            await response.write(ev("messageStop", {"stopReason": reply.stop_reason}))
        if reply.usage:
            output = reply.output_tokens if reply.output_tokens is not None else deltas
            usage = {
                "inputTokens": reply.input_tokens,
                "outputTokens": output,
                "totalTokens": reply.input_tokens + output + reply.cache_read_tokens,
            }
            if reply.cache_read_tokens:
                usage["cacheReadInputTokens"] = reply.cache_read_tokens
            await response.write(ev("metadata", {"usage": usage, "metrics": {"latencyMs": 1}}))
        await response.end()

    async def _converse(self, reply: BedrockReply, response: Response) -> None:
        await response.sleep(reply.delay_first_s)
        if reply.stall:
            await self.stall(response)
        if reply.hold:
            await self.hold_at_gate(response)
        content: list[dict[str, Any]] = []
        if reply.pieces():
            content.append({"text": "".join(reply.pieces())})
        for position, use in enumerate(reply.tool_uses):
            tool_use = {
                "toolUseId": use.id or f"tooluse_fake{position}",
                "name": use.name,
                "input": json.loads(use.input),
            }
            content.append({"toolUse": tool_use})
        output = reply.output_tokens if reply.output_tokens is not None else len(reply.pieces())
        data = {
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": reply.stop_reason or "end_turn",
            "usage": {
                "inputTokens": reply.input_tokens,
                "outputTokens": output,
                "totalTokens": reply.input_tokens + output,
            },
            "metrics": {"latencyMs": 1},
        }
        await response.full(200, json_bytes(data), {"Content-Type": "application/json"})


async def _fault_at_end(reply: BedrockReply, sent: int, response: Response) -> bool:
    """Faults scheduled at or past the last delta still fire, before messageStop."""
    if reply.drop_after is not None and sent >= reply.drop_after:
        response.drop()
        return False
    if reply.exception_after is not None and sent >= reply.exception_after:
        await response.write(eventstream.exception(reply.exception_type, reply.error))
        await response.end()
        return False
    return True
