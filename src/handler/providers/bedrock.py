"""Amazon Bedrock through ConverseStream.

boto3 blocks, so each call runs in its own worker thread that hands events to the event loop
through an asyncio queue. When the consumer stops early (closed generator, cancelled task), the
loop shuts the upstream socket down, which wakes the worker at once and drops the connection, so
Bedrock stops generating (and billing). `EventStream.close()` is not used from the loop: while the
worker is blocked in a read it waits for that read to finish. The worker closes the stream itself.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from handler.config.models import BedrockModel
from handler.errors import InvalidRequest
from handler.providers.base import (
    Event,
    Finish,
    ModelCall,
    ProviderError,
    ProviderTimeout,
    ReasoningDelta,
    ReasoningDone,
    TextDelta,
    ToolCallOut,
    ToolCallsDone,
    UsageReport,
)
from handler.providers.converse import build, to_converse_messages
from handler.providers.scrub import scrub
from handler.providers.tokens import count_tokens, estimate_prompt_tokens

__all__ = ["BedrockProvider", "to_converse_messages"]

_STOP = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
# Error codes (HTTP errors and in-stream exception events alike), normalised to lower case.
_RETRYABLE = {
    "throttlingexception": 429,
    "serviceunavailableexception": 503,
    "internalserverexception": 500,
    "modelnotreadyexception": 503,
    "modeltimeoutexception": 504,
    "modelstreamerrorexception": 502,
}
_CREDENTIAL_ARN = re.compile(r"arn:aws[\w-]*:(?:iam|sts)::\S+")
_MAX_DETAIL = 300
_END = object()


class BedrockProvider:
    supports_n = False

    def __init__(self, model: BedrockModel, client: Any = None) -> None:
        self._model = model
        self._client = client  # tests may pass their own; otherwise the shared one, made on first use

    def _bedrock(self) -> Any:
        if self._client is None:
            from handler import aws

            self._client = aws.client(
                "bedrock-runtime", self._model.region or _arn_region(self._model.model_id)
            )
        return self._client

    async def stream(self, call: ModelCall) -> AsyncIterator[Event]:
        built = build(self._model, call)
        request = built.arguments
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        worker = _Worker(self._bedrock, request, loop, queue)
        threading.Thread(target=worker.run, name="bedrock-stream", daemon=True).start()
        state = _State(response_tool=built.response_tool)
        finished = False
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    finished = True  # the worker is done and its connection back in the pool
                    break
                if isinstance(item, BaseException):
                    raise self._error(item, produced=state.produced)
                try:
                    events = list(state.events(item))
                except (TypeError, ValueError, AttributeError, KeyError):
                    raise ProviderError(
                        f"Bedrock model {self._model.model_id}: malformed upstream event", retryable=False
                    ) from None
                for event in events:
                    yield event
        finally:
            if not finished:
                worker.cancel()
        if state.reason is None:
            raise ProviderError(
                f"Bedrock model {self._model.model_id}: the stream ended early", retryable=not state.produced
            )
        if state.usage is None:
            completion = sum(count_tokens(t) for t in state.generated)
            yield UsageReport(
                prompt_tokens=estimate_prompt_tokens(call), completion_tokens=completion, estimated=True
            )
        else:
            yield state.usage

    # --- request ---------------------------------------------------------------------------------

    def request(self, call: ModelCall) -> dict[str, Any]:
        """The ConverseStream arguments (providers/converse.py)."""
        return build(self._model, call).arguments

    # --- errors ----------------------------------------------------------------------------------

    def _error(self, exc: BaseException, *, produced: bool) -> Exception:
        """Map a botocore/urllib3 failure to the port's errors, without credentials or traces."""
        from botocore import exceptions as bx
        from botocore.eventstream import ParserError

        model = f"Bedrock model {self._model.model_id}"
        if isinstance(exc, bx.ConnectTimeoutError | bx.ReadTimeoutError) or _is_urllib3(
            exc, "ReadTimeoutError"
        ):
            return ProviderTimeout(f"{model}: the upstream timed out")
        if isinstance(exc, bx.ClientError):
            return self._client_error(exc, produced=produced)
        if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError | bx.NoRegionError):
            return ProviderError(f"{model}: no AWS credentials or region for Bedrock", retryable=False)
        if isinstance(exc, bx.EndpointConnectionError | bx.ConnectionClosedError):
            return ProviderError(f"{model}: could not connect to Bedrock", retryable=not produced)
        if isinstance(exc, ParserError):
            return ProviderError(
                f"{model}: malformed upstream response ({type(exc).__name__})", retryable=False
            )
        if isinstance(exc, bx.BotoCoreError) or _is_urllib3(exc, ""):
            return ProviderError(
                f"{model}: the upstream connection failed ({type(exc).__name__})", retryable=not produced
            )
        if isinstance(exc, InvalidRequest | ProviderError):
            return exc
        return ProviderError(f"{model}: the call failed ({type(exc).__name__})", retryable=False)

    def _client_error(self, exc: Any, *, produced: bool) -> ProviderError:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        status = status if isinstance(status, int) and status >= 400 else None
        name = code[:1].upper() + code[1:]  # in-stream events are camelCase: throttlingException
        model = f"Bedrock model {self._model.model_id}"
        if name == "AccessDeniedException":  # its message names the caller's role ARN
            message = f"{model}: access denied (check the model access and the function's IAM permissions)"
        elif name == "ResourceNotFoundException":
            message = f"{model}: not found in this region"
        else:
            detail = _CREDENTIAL_ARN.sub("<arn>", " ".join(str(error.get("Message", "")).split()))
            detail = scrub(detail)  # endpoints, hosts and addresses (providers/scrub.py)
            if len(detail) > _MAX_DETAIL:
                detail = detail[: _MAX_DETAIL - 1] + "…"
            message = f"{model}: {name or 'error'}" + (f": {detail}" if detail else "")
        if code.lower() in _RETRYABLE:
            return ProviderError(
                message, retryable=not produced, upstream_status=status or _RETRYABLE[code.lower()]
            )
        return ProviderError(message, retryable=False, upstream_status=status)


def _arn_region(model_id: str) -> str | None:
    """An application inference profile ARN names its region: the client must call that one."""
    parts = model_id.split(":")
    return parts[3] or None if model_id.startswith("arn:") and len(parts) > 5 else None


def _is_urllib3(exc: BaseException, name: str) -> bool:
    """urllib3 errors escape botocore while an event stream is read."""
    module = type(exc).__module__
    return module.startswith("urllib3") and (not name or type(exc).__name__ == name)


# --- the worker thread ---------------------------------------------------------------------------


class _Worker:
    """Calls ConverseStream and feeds its events to the loop; stops when told to."""

    def __init__(
        self, client: Any, request: dict[str, Any], loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Any]
    ) -> None:
        self._client = client
        self._request = request
        self._loop = loop
        self._queue = queue
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._stream: Any = None

    def run(self) -> None:
        stream = None
        try:
            response = self._client().converse_stream(**self._request)
            stream = response["stream"]
            with self._lock:
                self._stream = stream
            if self._stopped.is_set():
                return
            for event in stream:
                if self._stopped.is_set():
                    return
                self._put(event)
            self._put(_END)
        except BaseException as exc:
            if not self._stopped.is_set():
                self._put(exc)
        finally:
            if stream is not None:
                with contextlib.suppress(Exception):
                    stream.close()

    def cancel(self) -> None:
        """Stop the worker; if its stream is still open, cut the connection under it."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        with self._lock:
            stream = self._stream
        if stream is not None:
            _shutdown_socket(stream)

    def _put(self, item: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is listening
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)


def _shutdown_socket(stream: Any) -> None:
    """Shut the stream's socket down: a blocked read returns at once and the peer sees the FIN."""
    raw = getattr(stream, "_raw_stream", None)  # urllib3 HTTPResponse
    connection = getattr(raw, "connection", None) or getattr(raw, "_connection", None)
    sock = getattr(connection, "sock", None)
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


# --- events --------------------------------------------------------------------------------------


@dataclass
class _State:
    response_tool: str | None = None  # structured output: this tool's input is the answer
    tools: dict[int, list[str]] = field(default_factory=dict)  # block index -> [id, name, input]
    answer_blocks: set[int] = field(default_factory=set)  # blocks of the response tool
    reasoning: dict[int, dict[str, Any]] = field(default_factory=dict)  # block index -> open block
    reason: str | None = None
    usage: UsageReport | None = None
    generated: list[str] = field(default_factory=list)
    produced: bool = False

    def events(self, item: dict[str, Any]) -> Iterator[Event]:
        if "contentBlockDelta" in item:
            body = item["contentBlockDelta"]
            delta = body.get("delta") or {}
            text = delta.get("text")
            if isinstance(text, str):  # the hot path: most events are text
                if text:
                    self.generated.append(text)
                    self.produced = True
                    yield TextDelta(index=0, text=text)
                return
            block = int(body.get("contentBlockIndex", 0))
            tool = delta.get("toolUse")
            if isinstance(tool, dict):
                fragment = str(tool.get("input", ""))
                if block in self.answer_blocks:
                    if fragment:
                        self.generated.append(fragment)
                        self.produced = True
                        yield TextDelta(index=0, text=fragment)
                else:
                    self.tools.setdefault(block, ["", "", ""])[2] += fragment
            reasoning = delta.get("reasoningContent")
            if isinstance(reasoning, dict):
                yield from self._reasoning(block, reasoning)
        elif "contentBlockStart" in item:
            body = item["contentBlockStart"]
            block = int(body.get("contentBlockIndex", 0))
            tool = (body.get("start") or {}).get("toolUse")
            if isinstance(tool, dict):
                if self.response_tool is not None and tool.get("name") == self.response_tool:
                    self.answer_blocks.add(block)
                else:
                    entry = self.tools.setdefault(block, ["", "", ""])
                    entry[0], entry[1] = str(tool.get("toolUseId", "")), str(tool.get("name", ""))
        elif "contentBlockStop" in item:
            yield from self._close_reasoning(int(item["contentBlockStop"].get("contentBlockIndex", 0)))
        elif "messageStop" in item:
            for block in sorted(self.reasoning):
                yield from self._close_reasoning(block)
            yield from self._stop(str(item["messageStop"].get("stopReason", "")))
        elif "metadata" in item:
            usage = item["metadata"].get("usage") or {}
            if isinstance(usage.get("inputTokens"), int) and isinstance(usage.get("outputTokens"), int):
                # Bedrock's inputTokens leaves out the cached tokens; OpenAI's prompt_tokens has them.
                read, write = usage.get("cacheReadInputTokens"), usage.get("cacheWriteInputTokens")
                read = read if isinstance(read, int) else None
                write = write if isinstance(write, int) else None
                self.usage = UsageReport(
                    prompt_tokens=usage["inputTokens"] + (read or 0) + (write or 0),
                    completion_tokens=usage["outputTokens"],
                    cached_tokens=read,
                    cache_write_tokens=write,
                )

    def _reasoning(self, block: int, delta: dict[str, Any]) -> Iterator[Event]:
        """ReasoningContentBlockDelta: a union of text, signature and redactedContent."""
        entry = self.reasoning.setdefault(block, {"text": [], "signature": None, "redacted": None})
        text = delta.get("text")
        if isinstance(text, str) and text:
            entry["text"].append(text)
            self.generated.append(text)
            self.produced = True
            yield ReasoningDelta(index=0, text=text)
        if isinstance(delta.get("signature"), str):
            entry["signature"] = (entry["signature"] or "") + delta["signature"]
        redacted = delta.get("redactedContent")
        if isinstance(redacted, bytes | bytearray):
            entry["redacted"] = (entry["redacted"] or b"") + bytes(redacted)
            self.produced = True

    def _close_reasoning(self, block: int) -> Iterator[Event]:
        entry = self.reasoning.pop(block, None)
        if entry is None:
            return
        if entry["redacted"] is not None:
            data = base64.b64encode(entry["redacted"]).decode()
            yield ReasoningDone(index=0, block={"type": "redacted_thinking", "data": data})
        elif entry["signature"] is not None:
            thinking = "".join(entry["text"])
            yield ReasoningDone(
                index=0, block={"type": "thinking", "thinking": thinking, "signature": entry["signature"]}
            )
        # Reasoning text without a signature cannot be sent back: it stays reasoning_content only.

    def _stop(self, stop_reason: str) -> Iterator[Event]:
        if stop_reason.startswith("malformed_"):
            raise ProviderError(
                f"the model produced {stop_reason.replace('_', ' ')}", retryable=not self.produced
            )
        reason = _STOP.get(stop_reason, "stop")
        if self.tools and reason in ("stop", "tool_calls"):
            calls = [
                ToolCallOut(id=t[0], name=t[1], arguments=t[2] or "{}") for _, t in sorted(self.tools.items())
            ]
            self.generated += [c.arguments for c in calls]
            self.produced = True
            yield ToolCallsDone(index=0, calls=calls)
            reason = "tool_calls"
        elif reason == "tool_calls" and self.answer_blocks:
            reason = "stop"  # structured output: the response tool's input was the answer
        self.reason = reason
        yield Finish(index=0, reason=reason)
