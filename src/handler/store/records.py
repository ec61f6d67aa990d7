"""What the gateway keeps about a completion: one record per choice, written once it is final."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from handler.values import ToolRun as ToolRun  # one type with the tool loop's (handler/values.py)

Status = Literal["completed", "failed", "cancelled", "ttft_exceeded"]


class RecordUsage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int | None = None  # prompt-cache reads (included in prompt_tokens)
    cache_write_tokens: int | None = None  # prompt-cache writes (included in prompt_tokens)


class Attempt(BaseModel):
    """One try at a model: the first, a retry, or a fallback."""

    model: str
    outcome: str  # ok | ttft_exceeded | error
    detail: str | None = None
    duration_ms: float = 0.0


class CompletionRecord(BaseModel):
    completion_id: str
    request_id: str
    session_id: str
    project: str
    model: str  # "{project}/{model}" that served the choice
    provider: str
    index: int = 0
    created: float
    status: Status = "completed"
    messages: list[dict[str, Any]] = Field(default_factory=list)
    system_prompt: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    user: str | None = None
    content: str = ""
    tool_calls: list[dict[str, Any]] | None = None
    finish_reason: str | None = None
    usage: RecordUsage = Field(default_factory=RecordUsage)
    ttft_ms: float | None = None
    duration_ms: float = 0.0
    campaign: str | None = None
    variant: str | None = None
    parent_completion_ids: list[str] = Field(default_factory=list)
    tool_runs: list[ToolRun] = Field(default_factory=list)
    attempts: list[Attempt] = Field(default_factory=list)
    error: dict[str, Any] | None = None
    usage_estimated: bool = False  # the upstream reported no usage: counted by the gateway
    reasoning_content: str | None = None
    thinking_blocks: list[dict[str, Any]] | None = None  # reasoning blocks with their signatures
    key_id: str | None = None  # the API key that asked (None: a batch, or before keys were recorded)
    cost_usd: float | None = None  # None: not computed, `cost_note` says why
    cost_note: str | None = None
