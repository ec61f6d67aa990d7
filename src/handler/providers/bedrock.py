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
import binascii
import contextlib
import re
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from handler.config.models import BedrockModel
from handler.errors import InvalidRequest
from handler.providers.base import (
    Event,
    Finish,
    ModelCall,
    ProviderError,
    ProviderTimeout,
    TextDelta,
    ToolCallOut,
    ToolCallsDone,
    UsageReport,
)
from handler.providers.scrub import scrub
from handler.providers.tokens import count_tokens, estimate_prompt_tokens

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
_IMAGE_FORMATS = {"png": "png", "jpeg": "jpeg", "jpg": "jpeg", "gif": "gif", "webp": "webp"}
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

            self._client = aws.client("bedrock-runtime", self._model.region)
        return self._client

    async def stream(self, call: ModelCall) -> AsyncIterator[Event]:
        request = self.request(call)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        worker = _Worker(self._bedrock, request, loop, queue)
        threading.Thread(target=worker.run, name="bedrock-stream", daemon=True).start()
        state = _State()
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
            yield UsageReport(prompt_tokens=estimate_prompt_tokens(call), completion_tokens=completion)
        else:
            yield state.usage

    # --- request ---------------------------------------------------------------------------------

    def request(self, call: ModelCall) -> dict[str, Any]:
        """The ConverseStream arguments. `seed`, penalties, `n` and `response_format` have no place in it."""
        messages, extra_system = to_converse_messages(call.messages)
        request: dict[str, Any] = {"modelId": self._model.model_id, "messages": messages}
        system = [{"text": t} for t in ([call.system] if call.system else []) + extra_system if t]
        if system:
            request["system"] = system
        inference: dict[str, Any] = {}
        if call.max_tokens is not None:
            inference["maxTokens"] = call.max_tokens
        if call.temperature is not None:
            inference["temperature"] = call.temperature
        if call.top_p is not None:
            inference["topP"] = call.top_p
        if call.stop:
            inference["stopSequences"] = list(call.stop)
        if inference:
            request["inferenceConfig"] = inference
        tool_config = _tool_config(call)
        if tool_config is not None:
            request["toolConfig"] = tool_config
        if self._model.additional_model_request_fields:
            request["additionalModelRequestFields"] = dict(self._model.additional_model_request_fields)
        return request

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
    tools: dict[int, list[str]] = field(default_factory=dict)  # block index -> [id, name, input]
    reason: str | None = None
    usage: UsageReport | None = None
    generated: list[str] = field(default_factory=list)
    produced: bool = False

    def events(self, item: dict[str, Any]) -> Iterator[Event]:
        if "contentBlockDelta" in item:
            body = item["contentBlockDelta"]
            delta = body.get("delta") or {}
            text = delta.get("text")
            if isinstance(text, str) and text:
                self.generated.append(text)
                self.produced = True
                yield TextDelta(index=0, text=text)
            tool = delta.get("toolUse")
            if isinstance(tool, dict):
                entry = self.tools.setdefault(int(body.get("contentBlockIndex", 0)), ["", "", ""])
                entry[2] += str(tool.get("input", ""))
        elif "contentBlockStart" in item:
            body = item["contentBlockStart"]
            tool = (body.get("start") or {}).get("toolUse")
            if isinstance(tool, dict):
                entry = self.tools.setdefault(int(body.get("contentBlockIndex", 0)), ["", "", ""])
                entry[0], entry[1] = str(tool.get("toolUseId", "")), str(tool.get("name", ""))
        elif "messageStop" in item:
            yield from self._stop(str(item["messageStop"].get("stopReason", "")))
        elif "metadata" in item:
            usage = item["metadata"].get("usage") or {}
            if isinstance(usage.get("inputTokens"), int) and isinstance(usage.get("outputTokens"), int):
                self.usage = UsageReport(
                    prompt_tokens=usage["inputTokens"], completion_tokens=usage["outputTokens"]
                )

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
        self.reason = reason
        yield Finish(index=0, reason=reason)


# --- OpenAI-shaped messages -> Converse ------------------------------------------------------------


def to_converse_messages(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Converse messages (consecutive same-role turns merged), and any system text found among them."""
    out: list[dict[str, Any]] = []
    system: list[str] = []
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(_plain_text(message.get("content")))
            continue
        if role == "tool":
            text = _plain_text(message.get("content")) or "(no output)"
            result = {"toolUseId": str(message.get("tool_call_id", "")), "content": [{"text": text}]}
            role, blocks = "user", [{"toolResult": result}]
        elif role == "assistant":
            blocks = _content_blocks(message.get("content"))
            for tool_call in message.get("tool_calls") or []:
                function = tool_call.get("function") or {}
                blocks.append(
                    {
                        "toolUse": {
                            "toolUseId": str(tool_call.get("id", "")),
                            "name": str(function.get("name", "")),
                            "input": _tool_input(function.get("arguments")),
                        }
                    }
                )
        elif role == "user":
            blocks = _content_blocks(message.get("content"))
        else:
            raise InvalidRequest(
                f"messages: role {role!r} is not supported by Bedrock models", param="messages"
            )
        if not blocks:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    return out, system


def _content_blocks(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):
                blocks.append({"text": part["text"]})
        elif kind == "image_url":
            url = part.get("image_url")
            blocks.append(_image_block(url.get("url") if isinstance(url, dict) else url))
        else:
            raise InvalidRequest(
                f"messages: content part {kind!r} is not supported by Bedrock models", param="messages"
            )
    return blocks


def _image_block(url: Any) -> dict[str, Any]:
    match = re.match(r"data:image/([\w.+-]+);base64,(.*)", url, re.DOTALL) if isinstance(url, str) else None
    if match is None:
        raise InvalidRequest(
            "messages: Bedrock models take images only as base64 data: URLs", param="messages"
        )
    image_format = _IMAGE_FORMATS.get(match.group(1).lower())
    if image_format is None:
        raise InvalidRequest(f"messages: image type {match.group(1)!r} is not supported", param="messages")
    try:
        data = base64.b64decode(match.group(2), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("messages: an image data: URL is not valid base64", param="messages") from None
    return {"image": {"format": image_format, "source": {"bytes": data}}}


def _tool_input(arguments: Any) -> Any:
    """Converse wants the call's arguments as a JSON object, not as text."""
    if isinstance(arguments, dict):
        return arguments
    if not arguments:
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {"arguments": str(arguments)}
    return value if isinstance(value, dict) else {"value": value}


def _has_tool_turns(call: ModelCall) -> bool:
    return any(m.get("role") == "tool" or m.get("tool_calls") for m in call.messages)


def _tool_config(call: ModelCall) -> dict[str, Any] | None:
    """Converse has no "none" tool choice: omit the tools, unless the conversation already holds
    tool calls or results, which Bedrock refuses without a toolConfig (then: tools, no choice)."""
    if not call.tools or (call.tool_choice == "none" and not _has_tool_turns(call)):
        return None
    tools = []
    for tool in call.tools:
        spec: dict[str, Any] = {"name": tool.name, "inputSchema": {"json": tool.parameters}}
        if tool.description:
            spec["description"] = tool.description
        tools.append({"toolSpec": spec})
    config: dict[str, Any] = {"tools": tools}
    choice = call.tool_choice
    if choice == "auto":
        config["toolChoice"] = {"auto": {}}
    elif choice == "required":
        config["toolChoice"] = {"any": {}}
    elif isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        if name:
            config["toolChoice"] = {"tool": {"name": name}}
    return config


def _plain_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return ""
