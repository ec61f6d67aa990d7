"""A provider-neutral `ModelCall` as a Converse request that Bedrock does not refuse.

Each rule comes from the Converse API reference (Message, ContentBlock, ToolSpecification,
ToolResultBlock, InferenceConfiguration, ReasoningContentBlock, CachePointBlock) or, where it says
so, from Anthropic's extended-thinking rules; docs/providers.md has the whole mapping, with what is
dropped or refused and why. What the gateway can repair without changing the meaning (merging two
user turns, dropping a blank text block) it repairs; what it cannot is a 400 naming the field, so a
request never becomes a 502 from a ValidationException.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

import orjson

from handler.config.models import BedrockModel
from handler.errors import InvalidRequest
from handler.providers.base import ModelCall

_IMAGE_FORMATS = {"png": "png", "jpeg": "jpeg", "jpg": "jpeg", "gif": "gif", "webp": "webp"}
# Message: "up to 20 images. Each image's size, height, and width must be no more than 3.75 MB,
# 8000 px, and 8000 px" (the pixel sizes are left to Bedrock: checking them means decoding images).
MAX_IMAGES = 20
MAX_IMAGE_BYTES = 3_932_160  # 3.75 MiB
# InferenceConfiguration.stopSequences: at most 2500 items, each at least 1 character.
MAX_STOP_SEQUENCES = 2500
# ToolSpecification.name / ToolUseBlock.toolUseId: [a-zA-Z0-9_-]+, 1 to 64 characters.
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_-]")
RESPONSE_TOOL = "json_response"
_CACHE_POINT: dict[str, Any] = {"cachePoint": {"type": "default"}}


@dataclass(frozen=True, slots=True)
class ConverseRequest:
    """The ConverseStream arguments, and the forced tool whose input is the answer (structured output)."""

    arguments: dict[str, Any]
    response_tool: str | None = None
    thinking: bool = False


def build(model: BedrockModel, call: ModelCall) -> ConverseRequest:
    """The Converse request for `call` on `model`. `seed`, penalties and `n` have no place in it."""
    messages, extra_system = to_converse_messages(call.messages)
    request: dict[str, Any] = {"modelId": model.model_id, "messages": messages}
    system: list[dict[str, Any]] = [
        {"text": t} for t in ([call.system] if call.system else []) + extra_system if t and t.strip()
    ]
    if system and "system" in model.cache_points:
        system.append(dict(_CACHE_POINT))
    if system:
        request["system"] = system

    tool_config, response_tool = _tool_config(model, call, messages)
    forced = tool_config is not None and any(k in tool_config.get("toolChoice", {}) for k in ("any", "tool"))
    budget = _thinking_budget(model, call, messages, forced=forced)

    inference: dict[str, Any] = {}
    max_tokens = call.max_tokens
    if max_tokens is not None:
        if max_tokens < 1:  # InferenceConfiguration.maxTokens: minimum value of 1
            raise InvalidRequest("max_tokens: Bedrock models need at least 1", param="max_tokens")
        if model.max_output_tokens is not None:
            max_tokens = min(max_tokens, model.max_output_tokens)
    if budget:
        # Anthropic: budget_tokens must be below max_tokens. `max_tokens` counts the answer, so the
        # budget comes on top of it, within the model's own maximum.
        answer = max_tokens if max_tokens is not None else 4096
        total = budget + answer
        if model.max_output_tokens is not None:
            total = min(total, model.max_output_tokens)
        budget = min(budget, total - 1)
        if budget < 1024:
            budget = 0
        else:
            max_tokens = total
    if max_tokens is not None:
        inference["maxTokens"] = max_tokens
    if not budget:  # Anthropic: thinking is not compatible with temperature or top_p changes
        if call.temperature is not None:
            if call.temperature > 1:  # InferenceConfiguration.temperature: 0 to 1
                raise InvalidRequest("temperature: Bedrock models take 0 to 1", param="temperature")
            inference["temperature"] = call.temperature
        if call.top_p is not None and not (model.exclusive_sampling and call.temperature is not None):
            inference["topP"] = call.top_p
    stops = [s for s in call.stop if s]  # each stop sequence: minimum length 1
    if len(stops) > MAX_STOP_SEQUENCES:
        raise InvalidRequest(f"stop: Bedrock takes at most {MAX_STOP_SEQUENCES} stop sequences", param="stop")
    if stops:
        inference["stopSequences"] = stops
    if inference:
        request["inferenceConfig"] = inference
    if tool_config is not None:
        request["toolConfig"] = tool_config
    fields = dict(model.additional_model_request_fields)
    if budget:
        fields["thinking"] = {"type": "enabled", "budget_tokens": budget}
    if fields:
        request["additionalModelRequestFields"] = fields
    if "messages" in model.cache_points and messages:
        messages[-1]["content"].append(dict(_CACHE_POINT))
    return ConverseRequest(request, response_tool, thinking=bool(budget))


# --- thinking --------------------------------------------------------------------------------------


def _thinking_budget(
    model: BedrockModel, call: ModelCall, messages: list[dict[str, Any]], *, forced: bool
) -> int:
    """The thinking budget, or 0 for off.

    Off as well where Anthropic would refuse it: a forced tool choice (`tool_choice` required or
    named, structured output), and a tool loop whose last assistant turn called tools without its
    reasoning block (the client did not send `thinking_blocks` back): "the final assistant message
    must start with a thinking block".
    """
    config = model.thinking
    if config is None:
        return 0
    if call.reasoning_effort is not None:
        budget = config.effort_budgets.get(call.reasoning_effort, 0)  # type: ignore[call-overload]
    else:
        budget = config.budget_tokens or 0
    if not budget or forced:
        return 0
    last = next((m for m in reversed(messages) if m["role"] == "assistant"), None)
    content = last["content"] if last is not None else []
    if any("toolUse" in b for b in content) and "reasoningContent" not in content[0]:
        return 0
    return int(budget)


# --- tools and structured output -------------------------------------------------------------------


def _has_tool_blocks(messages: list[dict[str, Any]]) -> bool:
    return any("toolUse" in b or "toolResult" in b for m in messages for b in m["content"])


def _tool_config(
    model: BedrockModel, call: ModelCall, messages: list[dict[str, Any]]
) -> tuple[dict[str, Any] | None, str | None]:
    """toolConfig, and the structured-output tool's name.

    Converse has no "none" tool choice: the tools are left out, unless the conversation holds
    toolUse / toolResult blocks, which Bedrock refuses without a toolConfig: then the tools stay
    (without a choice), and tools the history calls that this request no longer declares are
    declared with an open schema.
    """
    history = _has_tool_blocks(messages)
    tools: list[dict[str, Any]] = []
    names: set[str] = set()
    offered = call.tools if call.tool_choice != "none" or history else []
    for tool in offered:
        if not _TOOL_NAME.match(tool.name):
            raise InvalidRequest(
                f"tools: function name {tool.name!r} must match [a-zA-Z0-9_-]{{1,64}}", param="tools"
            )
        spec: dict[str, Any] = {"name": tool.name, "inputSchema": {"json": tool.parameters}}
        if tool.description and tool.description.strip():  # description: minimum length 1
            spec["description"] = tool.description
        tools.append({"toolSpec": spec})
        names.add(tool.name)
    if history:
        for message in messages:
            for block in message["content"]:
                used = block.get("toolUse", {}).get("name")
                if used and used not in names:
                    names.add(used)
                    tools.append(
                        {
                            "toolSpec": {
                                "name": used,
                                "description": "A tool called earlier in this conversation.",
                                "inputSchema": {"json": {"type": "object"}},
                            }
                        }
                    )
    response_tool = None
    choice: dict[str, Any] | None = None
    if call.tool_choice == "auto" and call.tools:
        choice = {"auto": {}}
    elif call.tool_choice == "required" and call.tools:
        choice = {"any": {}}
    elif isinstance(call.tool_choice, dict):
        name = (call.tool_choice.get("function") or {}).get("name")
        if name:
            if name not in names:
                raise InvalidRequest(
                    f"tool_choice: function {name!r} is not one of the request's tools", param="tool_choice"
                )
            choice = {"tool": {"name": name}}
    structured = _response_format_tool(call.response_format, names)
    if structured is not None:
        response_tool = structured["toolSpec"]["name"]
        tools.append(structured)
        if choice is None or call.tool_choice == "none" or not call.tools:
            choice = {"tool": {"name": response_tool}}
        # With tools of its own the model keeps its choice: it answers through the response tool.
    if not tools:
        return None, None
    config: dict[str, Any] = {"tools": tools}
    if "tools" in model.cache_points:
        config["tools"] = [*tools, dict(_CACHE_POINT)]
    if choice is not None and (call.tool_choice != "none" or structured is not None):
        config["toolChoice"] = choice
    return config, response_tool


def _response_format_tool(response_format: dict[str, Any] | None, taken: set[str]) -> dict[str, Any] | None:
    """`response_format` json_schema / json_object as a tool whose input is the answer."""
    if not response_format or response_format.get("type") not in ("json_schema", "json_object"):
        return None
    schema: dict[str, Any] = {"type": "object"}
    name = RESPONSE_TOOL
    description = "Give your whole answer as this tool's input: a JSON object."
    if response_format.get("type") == "json_schema":
        spec = response_format.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("schema", {}), dict):
            raise InvalidRequest(
                "response_format: json_schema needs an object with a `schema` object", param="response_format"
            )
        schema = spec.get("schema") or schema
        if isinstance(spec.get("name"), str) and spec["name"]:
            name = _NAME_CHARS.sub("_", spec["name"])[:64]
        if isinstance(spec.get("description"), str) and spec["description"].strip():
            description = f"{spec['description']} Give your whole answer as this tool's input."
    while name in taken:
        name = (name[:60] + "_out")[:64]
    return {"toolSpec": {"name": name, "description": description, "inputSchema": {"json": schema}}}


# --- OpenAI-shaped messages -> Converse --------------------------------------------------------------


def to_converse_messages(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Converse messages, and any system text found among them.

    Message rules: roles alternate (consecutive turns of one role are merged, tool results first
    in their user turn, as Anthropic wants them), no blank text block, images only in user turns,
    every toolResult answers a toolUse of the assistant turn just before it, and the conversation
    starts with a user turn. An assistant turn's reasoning blocks go first, then its text, then its
    tool calls: the order the model produced them in.
    """
    out: list[dict[str, Any]] = []
    system: list[str] = []
    images = 0
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(_plain_text(message.get("content")))
            continue
        if role == "tool":
            call_id = str(message.get("tool_call_id", ""))
            if call_id not in _previous_tool_ids(out):
                raise InvalidRequest(
                    f"messages: the tool message with tool_call_id {call_id!r} answers no tool call of "
                    "the assistant message before it",
                    param="messages",
                )
            text = _plain_text(message.get("content"))
            result = {"toolUseId": call_id, "content": [{"text": text if text.strip() else "(no output)"}]}
            role, blocks = "user", [{"toolResult": result}]
        elif role == "assistant":
            blocks = [
                *_reasoning_blocks(message.get("thinking_blocks")),
                *_content_blocks(message.get("content"), role),
            ]
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
            blocks = _content_blocks(message.get("content"), role)
        else:
            raise InvalidRequest(
                f"messages: role {role!r} is not supported by Bedrock models", param="messages"
            )
        images += sum(1 for b in blocks if "image" in b)
        if not blocks:
            continue
        if out and out[-1]["role"] == role:
            _merge(out[-1], blocks)
        else:
            out.append({"role": role, "content": blocks})
    if images > MAX_IMAGES:
        raise InvalidRequest(f"messages: Bedrock models take at most {MAX_IMAGES} images", param="messages")
    if not out:
        raise InvalidRequest("messages: no message has any content", param="messages")
    if out[0]["role"] != "user":
        raise InvalidRequest(
            "messages: a Bedrock conversation must start with a user message", param="messages"
        )
    _trim_prefill(out[-1])
    return out, system


def _previous_tool_ids(out: list[dict[str, Any]]) -> set[str]:
    """The toolUse ids of the assistant turn a tool result now would follow."""
    if out and out[-1]["role"] == "user":
        if not all("toolResult" in b for b in out[-1]["content"]):
            return set()  # the user spoke after the tool calls: their results come too late
        out = out[:-1]
    if not out or out[-1]["role"] != "assistant":
        return set()
    return {b["toolUse"]["toolUseId"] for b in out[-1]["content"] if "toolUse" in b}


def _merge(turn: dict[str, Any], blocks: list[dict[str, Any]]) -> None:
    content = turn["content"]
    if turn["role"] == "user":
        results = [b for b in blocks if "toolResult" in b]
        others = [b for b in blocks if "toolResult" not in b]
        split = sum(1 for b in content if "toolResult" in b)
        turn["content"] = [*content[:split], *results, *content[split:], *others]
    else:
        reasoning = [b for b in blocks if "reasoningContent" in b]
        turn["content"] = [
            *[b for b in content if "reasoningContent" in b],
            *reasoning,
            *[b for b in content if "reasoningContent" not in b],
            *[b for b in blocks if "reasoningContent" not in b],
        ]


def _trim_prefill(last: dict[str, Any]) -> None:
    """Anthropic: a final assistant turn (a prefill) cannot end with whitespace."""
    if last["role"] != "assistant" or "text" not in last["content"][-1]:
        return
    text = last["content"][-1]["text"].rstrip()
    if text:
        last["content"][-1]["text"] = text
    else:
        last["content"].pop()
        if not last["content"]:
            raise InvalidRequest("messages: the last assistant message is blank", param="messages")


def _reasoning_blocks(blocks: Any) -> list[dict[str, Any]]:
    """`thinking_blocks` as ReasoningContentBlocks, text and signature unchanged (its doc: "include
    the text and its signature unmodified"). `reasoning_content` alone has no signature: dropped."""
    out: list[dict[str, Any]] = []
    for block in blocks or []:
        if block.get("type") == "thinking":
            text = {"text": block["thinking"], "signature": block["signature"]}
            out.append({"reasoningContent": {"reasoningText": text}})
        elif block.get("type") == "redacted_thinking":
            try:
                data = base64.b64decode(block["data"], validate=True)
            except (binascii.Error, ValueError):
                raise InvalidRequest(
                    "messages: a redacted_thinking block's data is not valid base64", param="messages"
                ) from None
            out.append({"reasoningContent": {"redactedContent": data}})
    return out


def _content_blocks(content: Any, role: str) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content.strip() else []
    blocks: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            if isinstance(part.get("text"), str) and part["text"].strip():
                blocks.append({"text": part["text"]})
        elif kind == "image_url":
            if role != "user":  # Message: images only if the role is user
                raise InvalidRequest(
                    "messages: Bedrock models take images only in user messages", param="messages"
                )
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
    if len(data) > MAX_IMAGE_BYTES:
        raise InvalidRequest(
            f"messages: an image of {len(data)} bytes is over Bedrock's 3.75 MB per image", param="messages"
        )
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


def _plain_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return ""
