"""Any OpenAI-compatible server (vLLM, TGI, Ollama, OpenAI): one streamed `/chat/completions` call.

The request always streams and asks for usage; httpx-sse parses the event stream (no SDK), so the
first token is handed on the moment its chunk arrives. The response is read inside `async with`:
closing or cancelling the generator closes the upstream connection, which is how a cancelled or
abandoned call stops costing money. Error messages never carry the URL, the key or a trace.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from httpx_sse import EventSource

from handler.config.models import OpenAIModel
from handler.errors import GatewayError
from handler.providers.base import (
    Event,
    Finish,
    ModelCall,
    ProviderError,
    ProviderTimeout,
    ReasoningDelta,
    TextDelta,
    ToolCallOut,
    ToolCallsDone,
    UsageReport,
    retryable_status,
)
from handler.providers.http_client import shared_client
from handler.providers.scrub import scrub
from handler.providers.tokens import count_tokens, estimate_prompt_tokens
from handler.settings import get_settings

_FINISH = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "max_tokens": "length",
    "eos": "stop",
    "eos_token": "stop",
    "end_turn": "stop",
    "stop_sequence": "stop",
}
_MAX_ERROR_BODY = 64 * 1024
_MAX_DETAIL = 300
_DRAIN_S = 1.0


class _Malformed(Exception):
    """The upstream answered 200 with something that is not an OpenAI chunk stream."""


@dataclass
class _Choice:
    """One choice's tool calls, assembled from fragments by tool-call index."""

    calls: dict[int, list[str]] = field(default_factory=dict)  # index -> [id, name, arguments]
    finished: bool = False


class OpenAIProvider:
    def __init__(self, model: OpenAIModel, secrets: Callable[[str], str]) -> None:
        self._model = model
        self._secrets = secrets
        self.supports_n = model.supports_n
        self._url = f"{model.base_url}/chat/completions"
        # Connecting is bounded per model (`timeouts.connect_s`, else MODEL_CONNECT_TIMEOUT_S); the
        # first byte and the gaps between chunks by the engine (completions/deadlines.py).
        settings = get_settings()
        connect = model.timeouts.connect_s or settings.model_connect_timeout_s
        read = model.timeout_s or settings.upstream_read_timeout_s
        self._timeout: httpx.Timeout | None = httpx.Timeout(read, connect=min(connect, read))

    async def stream(self, call: ModelCall) -> AsyncIterator[Event]:
        # The key comes from SSM through a cache: only a cold read blocks, so keep it off the loop.
        headers, key = (
            await asyncio.to_thread(self._headers) if self._model.api_key_param else self._headers()
        )
        content = orjson.dumps(self.request_body(call))
        timeout: Any = self._timeout if self._timeout is not None else httpx.USE_CLIENT_DEFAULT
        choices: dict[int, _Choice] = {}
        usage: dict[str, Any] | None = None
        generated: list[str] = []
        produced = False  # content or a tool call was handed on: a retry would repeat it
        try:
            async with shared_client().stream(
                "POST", self._url, content=content, headers=headers, timeout=timeout
            ) as response:
                if response.status_code != 200:
                    raise await self._status_error(response, key)
                ended = False
                chunks = _sse_chunks(response)
                async for chunk in chunks:
                    if chunk is None:  # [DONE]
                        ended = True
                        break
                    self._raise_stream_error(chunk, produced, key)
                    if isinstance(chunk.get("usage"), dict):
                        usage = chunk["usage"]
                    for event in _chunk_events(chunk, choices):
                        if isinstance(event, TextDelta):
                            generated.append(event.text)
                        if isinstance(event, ReasoningDelta):
                            generated.append(event.text)
                        if isinstance(event, TextDelta | ToolCallsDone | ReasoningDelta):
                            produced = True
                        yield event
                if not ended and not any(c.finished for c in choices.values()):
                    raise ProviderError(
                        f"model {self._model.model!r}: the upstream stream ended early",
                        retryable=not produced,
                    )
                for event in _close_open_choices(choices):
                    yield event
                for choice in choices.values():
                    generated += [arguments for _id, _name, arguments in choice.calls.values()]
                yield _usage(call, usage, generated)
                if ended:
                    await _drain(chunks)
        except ProviderError:
            raise
        except _Malformed as exc:
            raise ProviderError(
                f"model {self._model.model!r}: malformed upstream response ({exc})", retryable=False
            ) from None
        except httpx.TimeoutException as exc:
            raise ProviderTimeout(f"model {self._model.model!r}: the upstream timed out") from exc
        except httpx.ConnectError as exc:
            raise ProviderError(
                f"model {self._model.model!r}: could not connect to the upstream", retryable=True
            ) from exc
        except httpx.TransportError as exc:  # dropped mid-way: RemoteProtocolError, ReadError, ...
            raise ProviderError(
                f"model {self._model.model!r}: the upstream connection failed ({type(exc).__name__})",
                retryable=not produced,
            ) from exc
        except httpx.HTTPError as exc:
            raise ProviderError(
                f"model {self._model.model!r}: upstream request failed ({type(exc).__name__})",
                retryable=False,
            ) from exc

    # --- request ---------------------------------------------------------------------------------

    def request_body(self, call: ModelCall) -> dict[str, Any]:
        """The upstream request: only the fields that are set, plus streaming with usage."""
        # Reasoning sent back with an assistant turn is for Bedrock: DeepSeek refuses it in input.
        messages = [_without_reasoning(m) for m in call.messages]
        if call.system:
            messages.insert(0, {"role": "system", "content": call.system})
        body: dict[str, Any] = {
            "model": self._model.model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        optional: dict[str, Any] = {
            "max_tokens": call.max_tokens,
            "temperature": call.temperature,
            "top_p": call.top_p,
            "seed": call.seed,
            "presence_penalty": call.presence_penalty,
            "frequency_penalty": call.frequency_penalty,
            "response_format": call.response_format,
            "reasoning_effort": call.reasoning_effort,
        }
        body.update((k, v) for k, v in optional.items() if v is not None)
        if call.stop:
            body["stop"] = list(call.stop)
        if call.n > 1:
            body["n"] = call.n
        if call.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
                }
                for t in call.tools
            ]
            if call.tool_choice is not None:
                body["tool_choice"] = call.tool_choice
            if call.parallel_tool_calls is not None:
                body["parallel_tool_calls"] = call.parallel_tool_calls
        return body

    def _headers(self) -> tuple[dict[str, str], str | None]:
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream", **self._model.headers}
        key: str | None = None
        if self._model.api_key_param:
            try:
                key = self._secrets(self._model.api_key_param)
            except GatewayError:
                raise
            except Exception as exc:
                raise ProviderError(
                    f"model {self._model.model!r}: could not read its API key", retryable=False
                ) from exc
            headers["Authorization"] = f"Bearer {key}"
        return headers, key

    # --- errors ----------------------------------------------------------------------------------

    async def _status_error(self, response: httpx.Response, key: str | None) -> ProviderError:
        status = response.status_code
        body = bytearray()
        try:
            async for part in response.aiter_bytes():
                body += part
                if len(body) >= _MAX_ERROR_BODY:
                    break
        except httpx.HTTPError:
            pass
        detail = self._scrub(_error_detail(bytes(body)), key)
        message = f"model {self._model.model!r}: upstream returned HTTP {status}"
        if detail:
            message += f": {detail}"
        return ProviderError(message, retryable=retryable_status(status), upstream_status=status)

    def _raise_stream_error(self, chunk: dict[str, Any], produced: bool, key: str | None) -> None:
        """Some servers (vLLM, OpenAI) report a failure mid-stream as `data: {"error": ...}`."""
        error = chunk.get("error")
        if not error:
            return
        detail = self._scrub(_detail_of(error), key)
        code = error.get("code") if isinstance(error, dict) else None
        status = code if isinstance(code, int) and 100 <= code < 600 else None
        retryable = not produced and (status is None or retryable_status(status))
        raise ProviderError(
            f"model {self._model.model!r}: upstream error mid-stream: {detail or 'unknown error'}",
            retryable=retryable,
            upstream_status=status,
        )

    def _scrub(self, text: str, key: str | None) -> str:
        """Upstream messages may echo the key or our URL back, altered or not; neither reaches a
        client (providers/scrub.py)."""
        return scrub(text, key=key, base_url=self._model.base_url)


# --- SSE parsing ---------------------------------------------------------------------------------

# What the first line of an event stream starts with: a field the gateway reads or a comment.
_SSE_START = (b"data:", b"event:", b"id:", b"retry:", b":")
_SNIFF = max(len(s) for s in _SSE_START)


async def _sse_chunks(response: httpx.Response) -> AsyncIterator[dict[str, Any] | None]:
    """Each SSE event's JSON object, or None for `[DONE]`. A body that does not start like SSE is refused.

    httpx-sse splits lines (on CR, LF and CRLF only: a JSON string may hold U+2028 or NEL raw, which
    httpx's `aiter_lines` splits on) and events; event names, ids, `retry`, events without data and
    unknown fields are ignored, as the SSE spec says. Against the hand-written parser it replaced
    (100k chunk events, SSE + JSON decoding, median of 5): one event per read 294 -> 469-514 ms,
    16 KiB reads 134-146 -> 233-257 ms, i.e. 1-2 µs more per event, where the whole relay spends
    ~33 µs per event (BENCHMARKS.md).
    """
    events = EventSource(_event_stream(response)).aiter_sse()
    try:
        async for event in events:
            if event.data:
                yield _decode(event.data)
    finally:
        await events.aclose()


def _event_stream(response: httpx.Response) -> httpx.Response:
    """The body as httpx-sse reads it: an event stream whatever its Content-Type says (some servers
    label it wrongly, and the gateway always read it), decoded with the response's own charset."""
    return httpx.Response(
        200,
        headers={"Content-Type": "text/event-stream"},
        stream=_CheckedBody(response),
        default_encoding=response.encoding or "utf-8",
    )


class _CheckedBody(httpx.AsyncByteStream):
    """The response's (decoded) bytes, refused unless they start like an event stream.

    httpx-sse skips lines it does not know, as the SSE spec says: without this check an HTML error
    page, a plain JSON answer or binary garbage sent with status 200 would read as an empty stream
    instead of a malformed one. The body's end also ends its last event, blank line or not.
    """

    def __init__(self, response: httpx.Response) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        head: bytes | None = b""  # the body's start until it is checked, then None
        async for chunk in self._response.aiter_bytes():
            if head is not None:
                head += chunk
                start = head.lstrip(b"\r\n")
                if len(start) < _SNIFF and b"\n" not in start and b"\r" not in start:
                    continue  # too little of the first line yet to tell
                _check_start(start)
                chunk, head = head, None
            yield chunk
        if head:
            _check_start(head.lstrip(b"\r\n"))
            yield head
        yield b"\n\n"


def _check_start(start: bytes) -> None:
    if start and not start.startswith(_SSE_START):
        raise _Malformed("not an event stream")


async def _drain(chunks: AsyncIterator[Any]) -> None:
    """Read what follows [DONE] (normally just the body's end) so the connection can be reused."""
    try:
        async with asyncio.timeout(_DRAIN_S):
            async for _ in chunks:
                pass
    except (TimeoutError, httpx.HTTPError, _Malformed):
        pass  # the connection is closed instead of reused; the answer is complete either way


def _decode(data: str) -> dict[str, Any] | None:
    if data.strip() == "[DONE]":
        return None
    try:
        chunk = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise _Malformed("invalid JSON in a chunk") from None
    if not isinstance(chunk, dict):
        raise _Malformed("a chunk is not an object")
    return chunk


def _chunk_events(chunk: dict[str, Any], choices: dict[int, _Choice]) -> Iterator[Event]:
    raw_choices = chunk.get("choices") or []
    if not isinstance(raw_choices, list):
        raise _Malformed("choices is not a list")
    for raw in raw_choices:
        if not isinstance(raw, dict):
            raise _Malformed("a choice is not an object")
        index = raw.get("index", 0)
        if not isinstance(index, int) or index < 0:
            raise _Malformed("bad choice index")
        choice = choices.setdefault(index, _Choice())
        if choice.finished:
            continue
        delta = raw.get("delta") or {}
        if not isinstance(delta, dict):
            raise _Malformed("delta is not an object")
        for key in ("reasoning_content", "reasoning"):  # vLLM / DeepSeek, and OpenRouter / newer vLLM
            reasoning = delta.get(key)
            if isinstance(reasoning, str) and reasoning:
                yield ReasoningDelta(index=index, text=reasoning, key=key)
        text = delta.get("content")
        if isinstance(text, str) and text:
            yield TextDelta(index=index, text=text)
        _collect_tool_calls(delta, choice)
        reason = raw.get("finish_reason")
        if reason:
            yield from _finish(index, choice, _FINISH.get(str(reason), "stop"))


def _collect_tool_calls(delta: dict[str, Any], choice: _Choice) -> None:
    fragments = delta.get("tool_calls") or []
    if not isinstance(fragments, list):
        raise _Malformed("tool_calls is not a list")
    legacy = delta.get("function_call")
    if isinstance(legacy, dict):  # the pre-tools shape: one call, no id
        fragments = [{"index": 0, "function": legacy}]
    for fragment in fragments:
        if not isinstance(fragment, dict):
            raise _Malformed("a tool call is not an object")
        position = fragment.get("index")
        if not isinstance(position, int):
            known = [i for i, c in choice.calls.items() if fragment.get("id") and c[0] == fragment.get("id")]
            position = known[0] if known else len(choice.calls)
        entry = choice.calls.setdefault(position, ["", "", ""])
        function = fragment.get("function") or {}
        if fragment.get("id") and not entry[0]:
            entry[0] = str(fragment["id"])
        if function.get("name") and not entry[1]:
            entry[1] = str(function["name"])
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            entry[2] += arguments
        elif isinstance(arguments, dict):  # some servers (Ollama) send parsed arguments
            entry[2] += orjson.dumps(arguments).decode()


def _finish(index: int, choice: _Choice, reason: str) -> Iterator[Event]:
    """ToolCallsDone (when the model asked for calls) then Finish: a turn with calls is `tool_calls`."""
    choice.finished = True
    if choice.calls and reason in ("stop", "tool_calls"):
        calls = [
            ToolCallOut(id=c[0] or f"call_{uuid.uuid4().hex[:24]}", name=c[1], arguments=c[2] or "{}")
            for _, c in sorted(choice.calls.items())
        ]
        yield ToolCallsDone(index=index, calls=calls)
        reason = "tool_calls"
    yield Finish(index=index, reason=reason)


def _close_open_choices(choices: dict[int, _Choice]) -> Iterator[Event]:
    """A choice the upstream never finished ends with `stop` (and at least choice 0 exists)."""
    choices.setdefault(0, _Choice())
    for index in sorted(choices):
        if not choices[index].finished:
            yield from _finish(index, choices[index], "stop")


def _usage(call: ModelCall, usage: dict[str, Any] | None, generated: list[str]) -> UsageReport:
    usage = usage or {}
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    estimated = not isinstance(prompt, int) or not isinstance(completion, int)
    if not isinstance(prompt, int):
        prompt = estimate_prompt_tokens(call)
    if not isinstance(completion, int):
        completion = sum(count_tokens(t) for t in generated)
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return UsageReport(
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_tokens=cached if isinstance(cached, int) else None,
        estimated=estimated,
    )


def _without_reasoning(message: dict[str, Any]) -> dict[str, Any]:
    if "reasoning_content" not in message and "thinking_blocks" not in message:
        return message
    return {k: v for k, v in message.items() if k not in ("reasoning_content", "thinking_blocks")}


# --- error bodies --------------------------------------------------------------------------------


def _error_detail(body: bytes) -> str:
    """The upstream's own error message when the body is JSON, cut to a readable length."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    return _detail_of(data.get("error") or data) if isinstance(data, dict) else ""


def _detail_of(error: Any) -> str:
    if isinstance(error, str):
        text = error
    elif isinstance(error, dict):
        found = next((error[k] for k in ("message", "detail", "error") if isinstance(error.get(k), str)), "")
        text = found
    else:
        text = ""
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"
