"""A cheap, deterministic token count for providers that report none (echo) and for limits.

Words and punctuation each count as one token, which tracks BPE tokenizers closely enough for
budgets and usage reports without shipping a vocabulary.

`estimate_prompt_tokens` is the one estimate of a call's prompt, used wherever the upstream did not
say (echo always; Bedrock and OpenAI-compatible servers that send no usage; a stream that ended
before its usage arrived).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from handler.providers.base import ModelCall

_TOKEN = re.compile(r"\s*(?:\w+|[^\w\s])")


def split_tokens(text: str) -> list[str]:
    """Pieces that concatenate back to `text` (leading whitespace rides on each piece)."""
    pieces = _TOKEN.findall(text)
    consumed = sum(len(p) for p in pieces)
    if consumed < len(text):  # trailing whitespace
        if pieces:
            pieces[-1] += text[consumed:]
        else:
            pieces = [text]
    return pieces


def count_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


def estimate_prompt_tokens(call: ModelCall) -> int:
    """The prompt's tokens: the system text, then every message's text and tool-call arguments.

    Each piece is counted on its own (two text parts never run together into one word). Tool-call
    arguments count because the model reads them back; tool names, tool definitions and images do
    not (an estimate, as the completion side counts generated text and arguments only).
    """
    total = count_tokens(call.system) if call.system else 0
    for message in call.messages:
        total += sum(count_tokens(piece) for piece in _prompt_pieces(message))
    return total


def _prompt_pieces(message: dict[str, Any]) -> Iterator[str]:
    """The texts of one OpenAI-shaped message: string content, text parts, tool-call arguments."""
    content = message.get("content")
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                yield part["text"]
    for tool_call in message.get("tool_calls") or ():
        function = tool_call.get("function") if isinstance(tool_call, dict) else None
        arguments = function.get("arguments") if isinstance(function, dict) else None
        if isinstance(arguments, str):
            yield arguments
