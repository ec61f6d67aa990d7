"""The composition root: real adapters built from settings, once per process, on first use."""

from __future__ import annotations

from functools import cache

from handler.completions.service import CompletionService
from handler.config.source import SSMConfigSource
from handler.providers.registry import provider_for
from handler.settings import get_settings
from handler.store.dynamodb import DynamoCompletionStore


@cache
def default_service() -> CompletionService:
    settings = get_settings()
    return CompletionService(
        config=SSMConfigSource(settings.config_prefix, settings.config_max_age_s),
        store=DynamoCompletionStore(settings.table_name, ttl_days=settings.completion_ttl_days),
        providers=provider_for,
    )


def reset() -> None:
    """Forget the built service (tests change settings between cases)."""
    default_service.cache_clear()
    get_settings.cache_clear()
