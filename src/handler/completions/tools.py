"""The server-side tool loop: a provider wrapper that runs the project's tools for the model.

`ToolLoop` implements the provider port around the real provider. It calls the model; when the
model's turn ends by calling the project's (server-side) tools, it runs them concurrently (each
within its own timeout), appends the assistant's tool calls and one `tool` message per result to
the conversation, and calls the model again, up to the project's `limits.max_tool_rounds` rounds
of tools. After the last round the model is asked once more with `tool_choice: "none"`, so it
answers with what it has. Everything else is passed through, so non-streaming and streaming
requests, fallbacks and the TTFT deadline work unchanged:

- text is relayed as the model produces it, in every round (tool rounds happen before and between
  text); the caller sees one answer.
- a turn that calls a client's function tool (one the request declared, not the project's) ends
  the answer with those calls and finish_reason `tool_calls`, for the client to run.
- usage is summed over the rounds and reported once, at the end.
- reasoning is relayed too, and each round's reasoning blocks (with their signatures) go back to the
  model with its tool calls: Bedrock with thinking refuses a tool turn without them.
- each round is reported as `ToolRunsReport` events carrying `ToolRun`s, the stored record's own type.

It declares `supports_n = False`, so `n > 1` runs one loop per choice (each choice may call
different tools).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from typing import Any

import orjson

from handler.completions.tool_runners import ToolRunner
from handler.config.models import ToolConfig
from handler.providers.base import (
    Event,
    Finish,
    ModelCall,
    Provider,
    ReasoningDelta,
    ReasoningDone,
    TextDelta,
    ToolCallOut,
    ToolCallsDone,
    ToolRunsReport,
    UsageReport,
)
from handler.values import ToolRun


def tool_message(run: ToolRun) -> dict[str, Any]:
    """The `tool` message the model gets for a run: its result, or `{"error": ...}`."""
    content = run.result if run.error is None else orjson.dumps({"error": run.error}).decode()
    return {"role": "tool", "tool_call_id": run.id, "content": content or ""}


def assistant_message(
    text: str, calls: list[ToolCallOut], thinking_blocks: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": text or None,
        "tool_calls": [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in calls
        ],
    }
    if thinking_blocks:
        message["thinking_blocks"] = thinking_blocks
    return message


async def _close(stream: AsyncIterator[Event]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()


class ToolLoop:
    supports_n = False

    def __init__(
        self, inner: Provider, tools: Mapping[str, ToolConfig], runner: ToolRunner, max_rounds: int
    ) -> None:
        self.inner = inner
        self.tools = dict(tools)
        self.runner = runner
        self.max_rounds = max_rounds

    async def stream(self, call: ModelCall) -> AsyncIterator[Event]:
        messages = list(call.messages)
        tool_choice = call.tool_choice
        prompt_tokens = completion_tokens = 0
        usage_seen = estimated = False
        cached: int | None = None
        written: int | None = None
        for round_ in range(1, self.max_rounds + 2):
            last = round_ > self.max_rounds
            this = replace(call, n=1, messages=messages, tool_choice="none" if last else tool_choice)
            text: list[str] = []
            calls: list[ToolCallOut] = []
            finish: Finish | None = None
            blocks: list[dict[str, Any]] = []
            stream = self.inner.stream(this)
            try:
                async for event in stream:
                    if isinstance(event, TextDelta):
                        text.append(event.text)
                        yield event
                    elif isinstance(event, ToolCallsDone):
                        calls.extend(event.calls)
                    elif isinstance(event, Finish):
                        finish = event
                    elif isinstance(event, UsageReport):
                        usage_seen = True
                        prompt_tokens += event.prompt_tokens
                        completion_tokens += event.completion_tokens
                        estimated = estimated or event.estimated
                        if event.cached_tokens is not None:
                            cached = (cached or 0) + event.cached_tokens
                        if event.cache_write_tokens is not None:
                            written = (written or 0) + event.cache_write_tokens
                    elif isinstance(event, ReasoningDone):
                        blocks.append(event.block)
                        yield event
                    elif isinstance(event, ReasoningDelta):
                        yield event
                    else:
                        yield event
            finally:
                await _close(stream)

            server = [c for c in calls if c.name in self.tools]
            client = [c for c in calls if c.name not in self.tools]
            if client or not server:
                # The answer, or the client's turn. Server calls mixed into a client's turn are not
                # run: the client could not send their results back; the model may ask again.
                if client:
                    yield ToolCallsDone(index=0, calls=client)
                    yield Finish(index=0, reason="tool_calls")
                elif finish is not None:
                    yield finish
                break
            if last:
                # The model still calls tools after the last round: the calls are recorded, not run.
                note = f"not run: the project's max_tool_rounds ({self.max_rounds}) was reached"
                runs = [
                    ToolRun(id=c.id, name=c.name, arguments=c.arguments, error=note, round=round_)
                    for c in server
                ]
                yield ToolRunsReport(index=0, round=round_, runs=runs)
                yield Finish(index=0, reason="stop")
                break
            yield ToolRunsReport(index=0, round=round_)  # the model has answered: its first output
            runs = list(
                await asyncio.gather(
                    *(self.runner.run(c.name, self.tools[c.name], c, round_) for c in server)
                )
            )
            yield ToolRunsReport(index=0, round=round_, runs=runs)
            turn = assistant_message("".join(text), server, blocks)
            messages = [*messages, turn, *map(tool_message, runs)]
            tool_choice = None  # a forced tool is forced once; later rounds are the model's choice
        if usage_seen:
            yield UsageReport(
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                cached_tokens=cached,
                cache_write_tokens=written,
                estimated=estimated,
            )
