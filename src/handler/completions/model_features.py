"""What a request asks of the model it is routed to, checked before any model is called.

A request field the model cannot honour is a 400 naming the field, rather than a request the
upstream refuses (a 502) or an answer that silently ignores it. Only the routed model is checked:
a fallback that lacks a feature serves the request without it (docs/providers.md).
"""

from __future__ import annotations

from handler.config.models import BedrockModel, ModelConfig, OpenAIModel
from handler.contract.chat import ChatRequest
from handler.errors import InvalidRequest


def check_model_features(req: ChatRequest, model: ModelConfig) -> None:
    if req.reasoning_effort is not None and not _supports_reasoning(model):
        raise InvalidRequest(
            "reasoning_effort: this model does not support reasoning (for a Bedrock model, the "
            "project config's `thinking` block turns it on)",
            param="reasoning_effort",
        )
    if isinstance(model, BedrockModel) and model.max_output_tokens is not None:
        max_tokens = req.effective_max_tokens
        if max_tokens is not None and max_tokens > model.max_output_tokens:
            param = "max_tokens" if req.max_tokens is not None else "max_completion_tokens"
            raise InvalidRequest(
                f"{param}: {max_tokens} exceeds this model's maximum output of {model.max_output_tokens} tokens",
                param=param,
            )


def _supports_reasoning(model: ModelConfig) -> bool:
    if isinstance(model, OpenAIModel):
        return True  # forwarded: the upstream decides
    return isinstance(model, BedrockModel) and model.thinking is not None
