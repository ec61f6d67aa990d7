"""The floor of the HTTP hot path: a bare FastAPI route under uvicorn, answering the echo's work.

`uvicorn benchmarks.bare_http:app`: one route on the gateway's path, written as FastAPI's tutorial
writes one (the body as a `dict` parameter, a `dict` returned), that
echoes the last user message one word at a time (as the echo model does) and answers it as a chat
completion, or, with `"stream": true`, as SSE chunks through Starlette's `StreamingResponse`, then
`data: [DONE]`. No auth, validation model, config, provider, record or log line: what is left is
what FastAPI and uvicorn cost, the figure the gateway's budget is a multiple of.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.responses import StreamingResponse

app = FastAPI()
_TOKENS = re.compile(r"\s*\S+")


def _answer(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            return str(message.get("content") or "")
    return ""


def _chunks(model: str, tokens: list[str]) -> Iterator[bytes]:
    for token in tokens:
        delta = {"role": "assistant", "content": token}
        choice = {"index": 0, "finish_reason": None, "delta": delta}
        chunk = {"id": "bare", "object": "chat.completion.chunk", "model": model, "choices": [choice]}
        yield b"data: " + json.dumps(chunk).encode() + b"\n\n"
    yield b"data: [DONE]\n\n"


@app.post("/api/v1/chat/completions", response_model=None)
async def chat(body: dict[str, Any]) -> dict[str, Any] | StreamingResponse:
    text = _answer(body)
    model = str(body.get("model"))
    if body.get("stream"):
        return StreamingResponse(_chunks(model, _TOKENS.findall(text)), media_type="text/event-stream")
    message = {"role": "assistant", "content": text}
    return {
        "id": "bare",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
    }
