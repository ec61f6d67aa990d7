"""The provider port: one small streaming interface every model provider implements.

Everything is a stream. A non-streaming request consumes the same events; this is what lets the
gateway enforce a time-to-first-token deadline on both kinds of request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from handler.errors import UpstreamError, UpstreamTimeout
from handler.values import ToolRun


@dataclass(slots=True)
class ToolSpec:
    """A function the model may call (a server-side tool or a client's function tool)."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(slots=True)
class ToolCallOut:
    id: str
    name: str
    arguments: str  # JSON text, as OpenAI sends it


@dataclass(slots=True)
class ModelCall:
    """What a provider is asked to do: provider-neutral, already validated and limited.

    `messages` are OpenAI-shaped dicts (role user/assistant/tool, content str or parts,
    tool_calls, tool_call_id); system text is separate in `system`, because providers differ in
    where it goes.
    """

    messages: list[dict[str, Any]]
    system: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] = field(default_factory=list)
    n: int = 1
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    response_format: dict[str, Any] | None = None
    tools: list[ToolSpec] = field(default_factory=list)
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None


# --- Events a provider yields ------------------------------------------------------------------


@dataclass(slots=True)
class TextDelta:
    index: int
    text: str


@dataclass(slots=True)
class ToolCallsDone:
    """The model asked for these calls; its turn ends with finish_reason `tool_calls`."""

    index: int
    calls: list[ToolCallOut]


@dataclass(slots=True)
class Finish:
    index: int
    reason: str  # stop | length | content_filter | tool_calls


@dataclass(slots=True)
class UsageReport:
    """Token usage of the whole call (all its choices)."""

    prompt_tokens: int  # includes the cached tokens below (OpenAI's convention)
    completion_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


@dataclass(slots=True)
class ToolRunsReport:
    """Server-side tools run for choice `index` in tool-loop round `round` (see completions/tools.py).

    Sent first with no runs when the model asks for tools (so that its tool call counts as its first
    output for the max_ttft_ms deadline, as a client tool call does), then with the runs once they
    have finished. Consumers that do not keep records ignore it: it carries no client-visible output.
    """

    index: int
    round: int
    runs: list[ToolRun] = field(default_factory=list)  # as the record keeps them


Event = TextDelta | ToolCallsDone | Finish | UsageReport | ToolRunsReport


class Provider(Protocol):
    """A model provider. `stream` must stop paying for the upstream call when it is closed early."""

    #: Whether one call can produce `n > 1` choices; otherwise the service fans out.
    supports_n: bool

    def stream(self, call: ModelCall) -> AsyncIterator[Event]: ...


# --- Errors a provider raises ------------------------------------------------------------------


class ProviderError(UpstreamError):
    """The upstream failed. `retryable` says whether trying again (or a fallback) may help."""

    def __init__(self, message: str, *, retryable: bool, upstream_status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.upstream_status = upstream_status


class ProviderTimeout(UpstreamTimeout):
    retryable = True


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, ProviderTimeout) or (isinstance(exc, ProviderError) and exc.retryable)


def retryable_status(status: int) -> bool:
    return status in (408, 409, 425, 429) or status >= 500
