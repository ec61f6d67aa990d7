"""Running one server-side tool call against its target: an HTTP endpoint or a Lambda function.

A run never raises: whatever goes wrong (bad arguments, a timeout, a 500, an unreachable host, a
Lambda error) becomes `ToolRun.error`, which the tool loop hands to the model as the tool's
result (`{"error": "..."}`) so that the model can recover, and the stored record keeps.

What a target receives (see docs/projects.md):
- HTTP: `POST {url}` with the call's arguments as the JSON body (the object the tool's
  `input_schema` describes), headers `X-Gateway-Tool`, `X-Gateway-Tool-Call-Id`, `X-Gateway-Project`,
  and `{auth_header}: <value of the SSM SecureString auth_param>` when configured. A 2xx body is
  the result, as text; any other status is an error naming the status and the start of the body.
- Lambda: `Invoke` (RequestResponse) with the payload
  `{"tool", "tool_call_id", "project", "arguments"}`, so one function can serve several tools. The
  function's return value is the result (a JSON string as its text, anything else as JSON text);
  a function error is an error naming the error message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson

from handler.config.models import HttpTarget, LambdaTarget, ToolConfig
from handler.observability import logger
from handler.providers.base import ToolCallOut
from handler.values import ToolRun

SecretReader = Callable[[str], str]

#: A tool result longer than this is cut (with a marker) before it reaches the model and the record.
MAX_RESULT_CHARS = 65_536
_EXCERPT = 300


class ToolError(Exception):
    """The tool did not produce a result; the message is what the model and the record see."""


def clip(text: str, limit: int = MAX_RESULT_CHARS) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [truncated: {len(text) - limit} more characters]"


def parse_arguments(raw: str) -> dict[str, Any]:
    """The model's arguments (JSON text) as an object; empty text means no arguments."""
    if not raw.strip():
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ToolError("the tool call's arguments are not valid JSON") from None
    if not isinstance(value, dict):
        raise ToolError("the tool call's arguments must be a JSON object")
    return value


def _as_text(body: bytes) -> str:
    """A JSON string body is its text; any other body is passed on as it came."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace")
    return value if isinstance(value, str) else body.decode("utf-8", "replace")


class ToolRunner:
    """Runs a project's tool calls. One per request; `secrets` reads SSM SecureStrings (cached)."""

    def __init__(self, secrets: SecretReader, project: str) -> None:
        self._secrets = secrets
        self._project = project

    async def run(self, tool_id: str, tool: ToolConfig, call: ToolCallOut, round_: int) -> ToolRun:
        began = time.perf_counter()
        run = ToolRun(id=call.id, name=call.name, arguments=call.arguments, round=round_)
        timeout = tool.target.timeout_s
        try:
            arguments = parse_arguments(call.arguments)
            target = tool.target
            if isinstance(target, HttpTarget):
                result = await asyncio.wait_for(self._http(tool_id, target, call, arguments), timeout)
            else:
                result = await asyncio.wait_for(self._lambda(tool_id, target, call, arguments), timeout)
            run.result = clip(result)
        except ToolError as exc:
            run.error = str(exc)
        except TimeoutError:
            run.error = f"the tool did not answer within {timeout:g} s"
        except Exception as exc:  # an unexpected failure is still only this tool's failure
            logger.warning("tool run failed", extra={"tool": tool_id, "error_type": type(exc).__name__})
            run.error = f"the tool failed ({type(exc).__name__})"
        run.duration_ms = round((time.perf_counter() - began) * 1000, 3)
        logger.info(
            "tool run",
            extra={"tool": tool_id, "round": round_, "ok": run.error is None, "duration_ms": run.duration_ms},
        )
        return run

    def _headers(self, tool_id: str, call: ToolCallOut) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "X-Gateway-Tool": tool_id,
            "X-Gateway-Tool-Call-Id": call.id,
            "X-Gateway-Project": self._project,
        }

    async def _http(
        self, tool_id: str, target: HttpTarget, call: ToolCallOut, arguments: dict[str, Any]
    ) -> str:
        import httpx

        from handler.providers.http_client import shared_client

        headers = self._headers(tool_id, call)
        if target.auth_param:
            try:
                headers[target.auth_header] = await asyncio.to_thread(self._secrets, target.auth_param)
            except Exception as exc:
                logger.error(
                    "tool credential unreadable", extra={"tool": tool_id, "param": target.auth_param}
                )
                raise ToolError("the tool's credential could not be read") from exc
        try:
            response = await shared_client().post(
                target.url,
                content=orjson.dumps(arguments),
                headers=headers,
                timeout=httpx.Timeout(target.timeout_s, connect=min(5.0, target.timeout_s)),
            )
        except httpx.TimeoutException:
            raise TimeoutError from None
        except httpx.HTTPError as exc:
            raise ToolError(f"the tool endpoint could not be reached ({type(exc).__name__})") from None
        if not 200 <= response.status_code < 300:
            excerpt = response.text[:_EXCERPT]
            raise ToolError(f"the tool endpoint answered HTTP {response.status_code}: {excerpt}".rstrip(": "))
        return _as_text(response.content)

    async def _lambda(
        self, tool_id: str, target: LambdaTarget, call: ToolCallOut, arguments: dict[str, Any]
    ) -> str:
        payload = orjson.dumps(
            {"tool": tool_id, "tool_call_id": call.id, "project": self._project, "arguments": arguments}
        )

        def invoke() -> tuple[str | None, bytes]:
            from handler import aws

            response = aws.client("lambda").invoke(
                FunctionName=target.function, InvocationType="RequestResponse", Payload=payload
            )
            body: bytes = response["Payload"].read()
            return response.get("FunctionError"), body

        try:
            function_error, body = await asyncio.to_thread(invoke)
        except Exception as exc:  # botocore ClientError (not found, throttled, denied) or connection
            code = getattr(exc, "response", {}).get("Error", {}).get("Code") or type(exc).__name__
            raise ToolError(f"the tool's Lambda function could not be invoked ({code})") from None
        if function_error:
            message = ""
            try:
                error = orjson.loads(body)
                if isinstance(error, dict):
                    message = str(error.get("errorMessage") or error.get("errorType") or "")
            except orjson.JSONDecodeError:
                message = body.decode("utf-8", "replace")
            raise ToolError(f"the tool's Lambda function failed: {message[:_EXCERPT] or function_error}")
        return _as_text(body)
