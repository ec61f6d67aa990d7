"""A minimal, fast OpenAI-compatible upstream for the relay benchmark: `python -m benchmarks.upstream PORT`.

Raw asyncio, keep-alive, hand-written HTTP/1.1 with every response pre-encoded: it must be much
faster than the gateway it feeds, so that the figures measure the gateway. The upstream model name
sets the reply's length: `bench-<n>` answers with `n` content chunks (default 8). Streams are
chunked SSE, one HTTP chunk per event, exactly like vLLM or OpenAI.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from functools import cache

_HEAD_END = b"\r\n\r\n"
_CHUNKS = re.compile(r"bench-(\d+)")
_CREATED = 1_700_000_000


def _chunk_count(model: str) -> int:
    match = _CHUNKS.fullmatch(model)
    return int(match.group(1)) if match else 8


def _sse(payload: dict[str, object]) -> bytes:
    data = b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(data), data)


@cache
def _stream_body(model: str, count: int, usage: bool) -> bytes:
    """The whole chunked SSE body of a stream, encoded once per shape."""

    def chunk(delta: dict[str, object], finish: str | None = None) -> dict[str, object]:
        return {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": _CREATED,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    parts = [_sse(chunk({"role": "assistant", "content": ""}))]
    parts.extend(_sse(chunk({"content": f" w{i}"})) for i in range(count))
    parts.append(_sse(chunk({}, "stop")))
    if usage:
        parts.append(
            _sse(
                {
                    "id": "chatcmpl-bench",
                    "object": "chat.completion.chunk",
                    "created": _CREATED,
                    "model": model,
                    "choices": [],
                    "usage": {"prompt_tokens": 5, "completion_tokens": count, "total_tokens": count + 5},
                }
            )
        )
    data = b"data: [DONE]\n\n"
    parts.append(b"%x\r\n%s\r\n" % (len(data), data))
    parts.append(b"0\r\n\r\n")
    return b"".join(parts)


@cache
def _json_response(model: str, count: int) -> bytes:
    body = json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": _CREATED,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(f" w{i}" for i in range(count))},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": count, "total_tokens": count + 5},
        },
        separators=(",", ":"),
    ).encode()
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body)
    return head + body


_STREAM_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            try:
                head = await reader.readuntil(_HEAD_END)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            body = await reader.readexactly(length) if length else b""
            if "/chat/completions" not in lines[0]:
                writer.write(_NOT_FOUND)
                await writer.drain()
                continue
            request = json.loads(body or b"{}")
            model = str(request.get("model", ""))
            count = _chunk_count(model)
            if request.get("stream"):
                usage = bool((request.get("stream_options") or {}).get("include_usage"))
                writer.write(_STREAM_HEAD)
                writer.write(_stream_body(model, count, usage))
            else:
                writer.write(_json_response(model, count))
            await writer.drain()
    except ConnectionError:
        return
    finally:
        writer.close()


async def _main(port: int) -> None:
    server = await asyncio.start_server(_serve, "127.0.0.1", port, backlog=512)
    print(f"ready {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(_main(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
