"""Server-Sent Events chunks of a chat completion stream, exactly as spec/WIRE-FORMAT.md shows them.

Content chunks are most of a stream, so their bytes are pre-built per choice once and only the
content string is encoded per token: a relay of tens of thousands of chunks a second must stay
cheap. The rarer chunks (a finish, tool calls, usage, an error) go through `orjson.dumps`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from handler.contract.errors import error_body

DONE = b"data: [DONE]\n\n"
# An SSE comment (WHATWG HTML, "Server-sent events": a line starting with a colon is ignored by
# clients), sent during long silences so that idle timeouts on the way do not cut the stream.
KEEP_ALIVE = b": keep-alive\n\n"
_CLOSE = b"}}]}\n\n"


def event(data: Any) -> bytes:
    """One `data:` event with a JSON payload."""
    return b"data: " + orjson.dumps(data) + b"\n\n"


def error_event(message: str, type_: str, code: str) -> bytes:
    """A failure after the stream began: the client gets it in-band, then `[DONE]`."""
    return event(error_body(message, type_, code))


class ChunkFormatter:
    """The chunks of one response: `id`, `created`, `model` and `session_id` shared by every chunk."""

    __slots__ = ("_base", "_completion_ids", "_open")

    def __init__(
        self, request_id: str, created: int, model: str, session_id: str, completion_ids: Sequence[str]
    ) -> None:
        self._base: dict[str, Any] = {
            "id": request_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "session_id": session_id,
        }
        self._completion_ids = list(completion_ids)
        head = b"data: " + orjson.dumps({**self._base, "usage": None})[:-1] + b',"choices":[{"index":'
        self._open = [
            head
            + b'%d,"completion_id":%s,"finish_reason":null,"delta":{"id":%s,"role":"assistant","content":'
            % (index, orjson.dumps(cid), orjson.dumps(cid))
            for index, cid in enumerate(self._completion_ids)
        ]

    def content(self, index: int, text: str) -> bytes:
        """A content delta of choice `index` (the hot path)."""
        return self._open[index] + orjson.dumps(text) + _CLOSE

    def _choice(self, index: int, finish_reason: str | None, **delta: Any) -> bytes:
        cid = self._completion_ids[index]
        choice = {
            "index": index,
            "completion_id": cid,
            "finish_reason": finish_reason,
            "delta": {"id": cid, "role": "assistant", "content": "", **delta},
        }
        return event({**self._base, "usage": None, "choices": [choice]})

    def tool_calls(self, index: int, calls: list[dict[str, Any]]) -> bytes:
        """The client-side function calls of choice `index`, whole, in OpenAI's delta shape."""
        return self._choice(index, None, tool_calls=[{"index": i, **call} for i, call in enumerate(calls)])

    def reasoning(self, index: int, text: str, key: str = "reasoning_content") -> bytes:
        """A reasoning delta of choice `index` (`reasoning_content`, as vLLM, DeepSeek and LiteLLM send it)."""
        return self._choice(index, None, **{key: text})

    def thinking_block(self, index: int, block: dict[str, Any]) -> bytes:
        """A whole reasoning block at its end, with its signature: what a client sends back."""
        return self._choice(index, None, thinking_blocks=[block])

    def finish(self, index: int, reason: str) -> bytes:
        """The last chunk of choice `index`: empty content and its finish reason."""
        return self._choice(index, reason)

    def usage(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int | None = None) -> bytes:
        """The `stream_options.include_usage` chunk: no choices, the whole request's usage (with
        `prompt_tokens_details.cached_tokens` only when the upstream reported cache reads)."""
        usage: dict[str, Any] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        if cached_tokens is not None:
            usage["prompt_tokens_details"] = {"cached_tokens": cached_tokens}
        return event({**self._base, "choices": [], "usage": usage})
