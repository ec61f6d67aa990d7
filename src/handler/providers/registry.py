"""Build the provider for a model config. Provider modules are imported on first use only."""

from __future__ import annotations

from collections.abc import Callable

from handler.config.models import BedrockModel, EchoModel, ModelConfig, OpenAIModel
from handler.providers.base import Provider

SecretReader = Callable[[str], str]


def provider_for(model: ModelConfig, secrets: SecretReader) -> Provider:
    if isinstance(model, EchoModel):
        from handler.providers.echo import EchoProvider

        return EchoProvider(model)
    if isinstance(model, OpenAIModel):
        from handler.providers.openai_compat import OpenAIProvider

        return OpenAIProvider(model, secrets)
    if isinstance(model, BedrockModel):
        from handler.providers.bedrock import BedrockProvider

        return BedrockProvider(model)
    raise TypeError(f"no provider for {type(model).__name__}")
