"""The built-in echo model: deterministic, no network, and paced like a real one when asked.

It answers with the last user message (after the model's `prefix`), one word-or-punctuation token
at a time. `max_tokens` cuts it with finish_reason `length`; a `stop` sequence cuts it with `stop`.
`ttft_ms` and `tokens_per_second` make it behave like a slow model, for deadlines and benchmarks.

Tool mode `call_all`: when tools are offered and the conversation has no tool results yet, it calls
each tool once with arguments `{"query": <last user text>}`; once results are in, it answers with
them. This runs the whole server-side tool loop without a real model.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import orjson

from handler.config.models import EchoModel
from handler.providers.base import (
    Event,
    Finish,
    ModelCall,
    TextDelta,
    ToolCallOut,
    ToolCallsDone,
    UsageReport,
)
from handler.providers.tokens import estimate_prompt_tokens, split_tokens


def _text_of(content: object) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


def answer_for(call: ModelCall, prefix: str = "") -> str:
    """The full text echo would answer before any limit applies."""
    tool_results = [m for m in call.messages if m.get("role") == "tool"]
    if tool_results:
        return prefix + " ".join(_text_of(m.get("content")) for m in tool_results)
    for message in reversed(call.messages):
        if message.get("role") == "user":
            return prefix + _text_of(message.get("content"))
    return prefix


def _cut(call: ModelCall, text: str) -> tuple[list[str], str]:
    """Apply `stop` then `max_tokens`; return the tokens to send and the finish reason."""
    reason = "stop"
    for stop in call.stop:
        at = text.find(stop) if stop else -1
        if at >= 0:
            text = text[:at]
    tokens = split_tokens(text)
    if call.max_tokens is not None and len(tokens) > call.max_tokens:
        tokens, reason = tokens[: call.max_tokens], "length"
    return tokens, reason


class EchoProvider:
    supports_n = True

    def __init__(self, model: EchoModel) -> None:
        self._model = model

    async def stream(self, call: ModelCall) -> AsyncIterator[Event]:
        model = self._model
        prompt_tokens = estimate_prompt_tokens(call)
        if model.ttft_ms:
            await asyncio.sleep(model.ttft_ms / 1000)

        has_results = any(m.get("role") == "tool" for m in call.messages)
        if model.tool_mode == "call_all" and call.tools and not has_results and call.tool_choice != "none":
            query = answer_for(call)
            for index in range(call.n):
                calls = [
                    ToolCallOut(
                        id=f"call_{uuid.uuid4().hex[:24]}",
                        name=t.name,
                        arguments=orjson.dumps({"query": query}).decode(),
                    )
                    for t in call.tools
                ]
                yield ToolCallsDone(index=index, calls=calls)
                yield Finish(index=index, reason="tool_calls")
            yield UsageReport(prompt_tokens=prompt_tokens, completion_tokens=call.n * len(call.tools))
            return

        tokens, reason = _cut(call, answer_for(call, model.prefix))
        delay = 1 / model.tokens_per_second if model.tokens_per_second else 0.0
        for position, token in enumerate(tokens):
            if delay and position:
                await asyncio.sleep(delay)
            for index in range(call.n):  # choices interleave by index, like a real batch decoder
                yield TextDelta(index=index, text=token)
        for index in range(call.n):
            yield Finish(index=index, reason=reason)
        yield UsageReport(prompt_tokens=prompt_tokens, completion_tokens=call.n * len(tokens))
