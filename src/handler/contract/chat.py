"""The wire format of `POST /api/v1/chat/completions` (spec/WIRE-FORMAT.md), as pydantic models.

Requests are validated strictly where the reference is explicit (types, ranges, UUIDs) and leniently
where real clients differ (a bare-string `stop`, OpenAI `tools`, content parts, `null` assistant
content). Fields this API does not know are ignored and named in the `X-Ignored-Fields` response
header, so an OpenAI client sending e.g. `logprobs` keeps working and can see what had no effect.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictStr,
    Tag,
    field_validator,
    model_validator,
)

from handler.contract.storable import check_storable

Role = Literal["system", "developer", "user", "assistant", "tool"]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TextPart(_Wire):
    type: Literal["text"]
    text: StrictStr


class ImageURL(_Wire):
    url: StrictStr
    detail: StrictStr | None = None


class ImagePart(_Wire):
    type: Literal["image_url"]
    # adaptive-sdk flattens the URL to a string; OpenAI sends {"url": ...}.
    image_url: StrictStr | ImageURL

    @property
    def url(self) -> str:
        return self.image_url if isinstance(self.image_url, str) else self.image_url.url


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class FunctionCall(_Wire):
    name: StrictStr
    arguments: StrictStr


class ToolCall(_Wire):
    id: StrictStr
    type: Literal["function"] = "function"
    function: FunctionCall


class ThinkingBlock(_Wire):
    """A reasoning block as the gateway returns it: thinking text with its signature, or redacted."""

    type: Literal["thinking", "redacted_thinking"]
    thinking: StrictStr | None = None
    signature: StrictStr | None = None
    data: StrictStr | None = None  # redacted_thinking: the encrypted content, base64

    @model_validator(mode="after")
    def _complete(self) -> ThinkingBlock:
        if self.type == "thinking" and (self.thinking is None or not self.signature):
            raise ValueError("a thinking block needs its thinking and its signature")
        if self.type == "redacted_thinking" and not self.data:
            raise ValueError("a redacted_thinking block needs its data")
        return self


class Message(_Wire):
    role: Role
    content: StrictStr | list[ContentPart] | None = None
    name: StrictStr | None = None
    completion_id: uuid.UUID | None = None
    metadata: Any = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: StrictStr | None = None
    # An assistant turn's reasoning, sent back as the gateway returned it (vLLM / LiteLLM shape):
    # Bedrock needs the blocks, signatures included, for multi-turn tool use with thinking.
    reasoning_content: StrictStr | None = None
    thinking_blocks: list[ThinkingBlock] | None = None

    @model_validator(mode="after")
    def _content_present(self) -> Message:
        if self.content is None and self.role != "assistant":
            raise ValueError(f"content is required for role {self.role!r}")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("tool_call_id is required for role 'tool'")
        return self

    def text(self) -> str:
        """The message's text (image parts are not text)."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content if isinstance(p, TextPart))


class StreamOptions(_Wire):
    include_usage: StrictBool | None = None


class ToolSwitch(_Wire):
    """The reference's `tools` item: switch one of the project's server-side tools on or off."""

    model_config = ConfigDict(extra="forbid")
    id: StrictStr
    enabled: StrictBool = True


class FunctionDef(_Wire):
    name: Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    description: StrictStr | None = None
    parameters: dict[str, Any] | None = None
    strict: StrictBool | None = None


class FunctionTool(_Wire):
    """An OpenAI client-side function tool, passed through to the model."""

    type: Literal["function"]
    function: FunctionDef


def _tool_kind(value: Any) -> str:
    # Tell the two shapes apart by shape, never crash on either.
    if isinstance(value, dict):
        return "function_tool" if "type" in value else "switch_tool"
    return "function_tool" if isinstance(value, FunctionTool) else "switch_tool"


ToolItem = Annotated[
    Annotated[ToolSwitch, Tag("switch_tool")] | Annotated[FunctionTool, Tag("function_tool")],
    Discriminator(_tool_kind),
]


Number = Annotated[float, Field(allow_inf_nan=False)]


def _free_form(data: Any) -> list[tuple[tuple[str | int, ...], Any]]:
    """The request's free-form (`Any`) values, by path: where a NaN or a deep nesting can hide."""
    if not isinstance(data, dict):
        return []
    free: list[tuple[tuple[str | int, ...], Any]] = [
        ((name,), data[name])
        for name in ("response_format", "system_prompt_args", "tool_choice")
        if name in data
    ]
    for field, key in (("messages", "metadata"), ("tools", "function")):
        items = data.get(field)
        for i, item in enumerate(items if isinstance(items, list) else ()):
            if isinstance(item, dict) and key in item:
                free.append(((field, i, key), item[key]))
    return free


class ChatRequest(_Wire):
    # Unknown top-level fields are kept aside (`model_extra`) only to be named back to the client.
    model_config = ConfigDict(extra="allow")

    messages: Annotated[list[Message], Field(min_length=1)]
    model: Annotated[StrictStr, Field(min_length=1, max_length=512)]
    stop: list[StrictStr] | StrictStr | None = None
    max_tokens: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = None
    temperature: Annotated[Number, Field(ge=0, le=2)] | None = None
    top_p: Annotated[Number, Field(ge=0, le=1)] | None = None
    max_ttft_ms: Annotated[int, Field(ge=0, le=2**63 - 1)] | None = None
    stream: StrictBool | None = False
    stream_options: StreamOptions | None = None
    session_id: uuid.UUID | None = None
    # The reference says UUID; OpenAI clients send any string. Kept as an opaque id (see README).
    user: Annotated[StrictStr, Field(min_length=1, max_length=256)] | None = None
    ab_campaign: Annotated[StrictStr, Field(min_length=1, max_length=128)] | None = None
    n: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = None
    labels: dict[StrictStr, StrictStr] | None = None
    metadata: dict[StrictStr, StrictStr] | None = None
    system_prompt_args: dict[StrictStr, Any] | None = None
    tags: list[StrictStr] | None = None
    use_tools: StrictBool | None = None
    tools: list[ToolItem] | None = None
    tool_choice: StrictStr | dict[str, Any] | None = None
    parallel_tool_calls: StrictBool | None = None
    store: StrictBool | None = None
    # Common OpenAI sampling fields, forwarded where the provider supports them.
    seed: Annotated[int, Field(ge=-(2**63), le=2**63 - 1)] | None = None
    presence_penalty: Annotated[Number, Field(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[Number, Field(ge=-2, le=2)] | None = None
    response_format: dict[str, Any] | None = None
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        """What cannot be stored is refused before anything else (contract/storable.py)."""
        check_storable(data, "ChatRequest", _free_form(data))
        return data

    @field_validator("response_format")
    @classmethod
    def _response_format(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and value.get("type") not in ("text", "json_object", "json_schema"):
            raise ValueError("type must be one of 'text', 'json_object', 'json_schema'")
        return value

    # Derived views, so the service never re-derives them.
    @property
    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    @property
    def all_labels(self) -> dict[str, str]:
        """`metadata` is an alias of `labels`; when both are sent, `labels` wins on shared keys."""
        return {**(self.metadata or {}), **(self.labels or {})}

    @property
    def effective_max_tokens(self) -> int | None:
        return self.max_tokens if self.max_tokens is not None else self.max_completion_tokens

    @property
    def effective_n(self) -> int:
        return self.n or 1  # the reference allows 0; it means the default, one choice

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    @property
    def tool_switches(self) -> list[ToolSwitch]:
        return [t for t in self.tools or [] if isinstance(t, ToolSwitch)]

    @property
    def function_tools(self) -> list[FunctionTool]:
        return [t for t in self.tools or [] if isinstance(t, FunctionTool)]


# --- Responses ---------------------------------------------------------------------------------


class PromptTokensDetails(BaseModel):
    cached_tokens: int


class Usage(BaseModel):
    completion_tokens: int
    prompt_tokens: int
    total_tokens: int
    # Only when the upstream reported prompt-cache reads (absent otherwise: bodies stay as they were).
    prompt_tokens_details: PromptTokensDetails | None = None


class ResponseMessage(BaseModel):
    id: str
    role: str = "assistant"
    content: str
    tool_calls: list[ToolCall] | None = None
    reasoning_content: str | None = None  # only when the model reasoned
    thinking_blocks: list[dict[str, Any]] | None = None  # to send back with the turn (signatures)


class Choice(BaseModel):
    index: int
    message: ResponseMessage
    completion_id: str
    model: str
    finish_reason: str | None


class ChatResponse(BaseModel):
    id: str
    object: str = "chat.completion"
    created: int
    model: str
    session_id: str
    choices: list[Choice]
    usage: Usage
