"""What Bedrock refuses in a Converse request, as the fake Bedrock checks it (a ValidationException).

Written from the Converse API reference, not from the provider: each rule's message names the
document it comes from, so a failing test says which rule the gateway broke. The request is the
JSON botocore serialised (blobs as base64), so botocore's own serialisation stays in the path.

- Message: roles `user` / `assistant`; up to 20 images of at most 3.75 MB; images only in user turns.
- Converse / Anthropic: the conversation starts with a user turn and alternates.
- ContentBlock: a union (exactly one member); a text block is not blank.
- ToolResultBlock: answers a toolUse of the assistant turn just before it; needs a toolConfig.
- ToolSpecification: name [a-zA-Z0-9_-]{1,64}, description at least 1 character.
- InferenceConfiguration: maxTokens >= 1, temperature and topP 0..1, up to 2500 stop sequences of
  at least 1 character.
- Anthropic models since Claude 4.5 on Bedrock: `temperature` and `top_p` not both.
- additionalModelRequestFields.thinking (Anthropic extended thinking): budget_tokens >= 1024 and
  below maxTokens, no temperature / top_p change, no forced tool choice, and the last assistant turn
  of a tool loop starts with its reasoning block, whose text and signature come back unmodified
  (ReasoningTextBlock.signature).
- CachePointBlock: follows content it caches (never first), at most 4 per request.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Container
from typing import Any

BLOCKS = {
    "text", "image", "document", "video", "audio", "toolUse", "toolResult", "guardContent",
    "cachePoint", "reasoningContent", "citationsContent", "searchResult",
}  # fmt: skip
NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
IMAGE_FORMATS = {"png", "jpeg", "gif", "webp"}
MAX_IMAGES = 20
MAX_IMAGE_BYTES = 3_932_160
MAX_CACHE_POINTS = 4
# Models that refuse temperature together with top_p (Anthropic, Claude 4.5 and later).
EXCLUSIVE_SAMPLING = ("claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1", "claude-opus-4-5")


def violations(model_id: str, body: dict[str, Any], signatures: Container[tuple[str, str]]) -> list[str]:
    """Every rule `body` breaks (empty: Bedrock would take it)."""
    out: list[str] = []
    messages = body.get("messages") or []
    if not messages:
        out.append("Converse: messages must not be empty")
    cache_points = 0
    tool_blocks = False
    previous: dict[str, Any] | None = None
    images = 0
    for m, message in enumerate(messages):
        role = message.get("role")
        where = f"messages.{m}"
        if role not in ("user", "assistant"):
            out.append(f"Message: {where}.role must be user or assistant")
        if m == 0 and role != "user":
            out.append("Converse: a conversation must start with a user message")
        if previous is not None and previous.get("role") == role:
            out.append(f"Converse: {where} has the same role as the message before it (roles alternate)")
        content = message.get("content") or []
        if not content:
            out.append(f"Message: {where}.content must not be empty")
        for b, block in enumerate(content):
            at = f"{where}.content.{b}"
            keys = set(block)
            if len(keys) != 1 or not keys <= BLOCKS:
                out.append(f"ContentBlock: {at} must have exactly one member, has {sorted(keys)}")
                continue
            (kind,) = keys
            value = block[kind]
            if kind == "text" and not str(value).strip():
                out.append(f"ContentBlock: the text field in {at} is blank")
            elif kind == "image":
                images += 1
                if role != "user":
                    out.append(f"Message: images only in user messages ({at})")
                if value.get("format") not in IMAGE_FORMATS:
                    out.append(f"ImageBlock: {at}.format must be one of {sorted(IMAGE_FORMATS)}")
                data = base64.b64decode((value.get("source") or {}).get("bytes", ""))
                if len(data) > MAX_IMAGE_BYTES:
                    out.append(f"Message: image {at} is over 3.75 MB")
            elif kind == "toolUse":
                tool_blocks = True
                if role != "assistant":
                    out.append(f"ToolUseBlock: {at} in a {role} message")
                if not NAME.match(str(value.get("name", ""))) or not NAME.match(
                    str(value.get("toolUseId", ""))
                ):
                    out.append(f"ToolUseBlock: {at} name and toolUseId must match [a-zA-Z0-9_-]{{1,64}}")
                if not isinstance(value.get("input"), dict):
                    out.append(f"ToolUseBlock: {at}.input must be a JSON object")
            elif kind == "toolResult":
                tool_blocks = True
                asked = _tool_use_ids(previous)
                if role != "user" or value.get("toolUseId") not in asked:
                    out.append(
                        f"ToolResultBlock: {at} toolUseId {value.get('toolUseId')!r} answers no toolUse of "
                        "the assistant message before it"
                    )
                for r, part in enumerate(value.get("content") or []):
                    if "text" in part and not str(part["text"]).strip():
                        out.append(f"ContentBlock: the text field in {at}.content.{r} is blank")
            elif kind == "reasoningContent":
                if role != "assistant":
                    out.append(f"ReasoningContentBlock: {at} in a {role} message")
                text = value.get("reasoningText")
                if text is not None and (text.get("text"), text.get("signature")) not in signatures:
                    out.append(
                        f"ReasoningTextBlock: {at} text and signature must come back unmodified "
                        "(the signature does not verify)"
                    )
            elif kind == "cachePoint":
                cache_points += 1
                if b == 0:
                    out.append(f"CachePointBlock: {at} must follow the content it caches")
        previous = message
    if images > MAX_IMAGES:
        out.append(f"Message: at most {MAX_IMAGES} images, got {images}")

    system = body.get("system") or []
    for s, block in enumerate(system):
        if "text" in block and not str(block["text"]).strip():
            out.append(f"SystemContentBlock: system.{s}.text is blank")
        if "cachePoint" in block:
            cache_points += 1
            if s == 0:
                out.append("CachePointBlock: system.0 must follow the content it caches")

    config = body.get("toolConfig")
    if tool_blocks and config is None:
        out.append("Converse: toolConfig must be defined when using toolUse and toolResult content blocks")
    names: list[str] = []
    if config is not None:
        tools = config.get("tools") or []
        if not tools:
            out.append("ToolConfiguration: tools must not be empty")
        for t, tool in enumerate(tools):
            if "cachePoint" in tool:
                cache_points += 1
                if t == 0:
                    out.append("CachePointBlock: toolConfig.tools.0 must follow the tools it caches")
                continue
            spec = tool.get("toolSpec") or {}
            name = str(spec.get("name", ""))
            names.append(name)
            if not NAME.match(name):
                out.append(f"ToolSpecification: toolConfig.tools.{t}.name must match [a-zA-Z0-9_-]{{1,64}}")
            if "description" in spec and not spec["description"]:
                out.append(f"ToolSpecification: toolConfig.tools.{t}.description needs at least 1 character")
            if not isinstance((spec.get("inputSchema") or {}).get("json"), dict):
                out.append(f"ToolSpecification: toolConfig.tools.{t}.inputSchema.json is required")
        if len(set(names)) != len(names):
            out.append("ToolConfiguration: tool names must be unique")
        choice = config.get("toolChoice")
        if choice is not None:
            if len(choice) != 1:
                out.append("ToolChoice: exactly one of auto, any, tool")
            if "tool" in choice and choice["tool"].get("name") not in names:
                out.append("SpecificToolChoice: toolChoice.tool.name is not one of the tools")
    if cache_points > MAX_CACHE_POINTS:
        out.append(f"CachePointBlock: at most {MAX_CACHE_POINTS} cache points, got {cache_points}")

    inference = body.get("inferenceConfig") or {}
    max_tokens = inference.get("maxTokens")
    if max_tokens is not None and max_tokens < 1:
        out.append("InferenceConfiguration: maxTokens minimum value of 1")
    for knob in ("temperature", "topP"):
        if knob in inference and not 0 <= inference[knob] <= 1:
            out.append(f"InferenceConfiguration: {knob} valid range 0 to 1")
    stops = inference.get("stopSequences") or []
    if len(stops) > 2500 or any(len(s) < 1 for s in stops):
        out.append("InferenceConfiguration: stopSequences up to 2500 items, each of minimum length 1")
    if any(m in model_id for m in EXCLUSIVE_SAMPLING) and "temperature" in inference and "topP" in inference:
        out.append("Anthropic: temperature and top_p cannot both be specified for this model")

    thinking = (body.get("additionalModelRequestFields") or {}).get("thinking")
    if thinking is not None and thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024:
            out.append("Anthropic extended thinking: budget_tokens must be at least 1024")
        elif max_tokens is None or budget >= max_tokens:
            out.append("Anthropic extended thinking: max_tokens must be greater than thinking.budget_tokens")
        if inference.get("temperature", 1) != 1 or inference.get("topP", 1) < 0.95:
            out.append(
                "Anthropic extended thinking: thinking isn't compatible with temperature or top_p changes"
            )
        if config is not None and any(k in (config.get("toolChoice") or {}) for k in ("any", "tool")):
            out.append(
                "Anthropic extended thinking: tool_choice forces tool use, which thinking does not allow"
            )
        last = next((m for m in reversed(messages) if m.get("role") == "assistant"), None)
        content = (last or {}).get("content") or []
        if any("toolUse" in b for b in content) and "reasoningContent" not in content[0]:
            out.append(
                "Anthropic extended thinking: the final assistant message must start with a thinking "
                "block (expected thinking or redacted_thinking, found tool_use)"
            )
    return out


def _tool_use_ids(message: dict[str, Any] | None) -> set[str]:
    if message is None or message.get("role") != "assistant":
        return set()
    return {b["toolUse"].get("toolUseId") for b in message.get("content") or [] if "toolUse" in b}
