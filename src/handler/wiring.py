"""The composition root: real adapters built from settings, once per process, on first use."""

from __future__ import annotations

import threading
from functools import cache
from typing import TYPE_CHECKING

from handler.completions.campaign_results import CampaignResultsService
from handler.completions.campaign_state import CampaignStateConfig, CampaignStops
from handler.completions.feedback import FeedbackService
from handler.completions.models import ModelsService
from handler.completions.quotas import QuotaGate
from handler.completions.records import RecordsService
from handler.completions.service import CompletionService
from handler.completions.usage import UsageService
from handler.config.source import SSMConfigSource
from handler.providers.registry import provider_for
from handler.settings import get_settings
from handler.store.dynamodb import DynamoCompletionStore
from handler.store.keys import CachedKeys, DynamoKeyStore
from handler.store.offload import default_payloads
from handler.store.quotas import DynamoQuotaStore
from handler.store.retry import StoreRetryQueue
from handler.store.usage import DynamoUsageStore

if TYPE_CHECKING:
    from fastapi import FastAPI

    from handler.api.deps import Services
    from handler.batch.runtime import Runtime


@cache
def default_store() -> DynamoCompletionStore:
    settings = get_settings()
    return DynamoCompletionStore(settings.table_name, ttl_days=settings.completion_ttl_days)


@cache
def default_retry_queue() -> StoreRetryQueue | None:
    """Where records go when the table refuses them (StoreRetryFunction drains it)."""
    url = get_settings().store_retry_queue_url
    return StoreRetryQueue(url, default_payloads()) if url else None


@cache
def default_config() -> CampaignStateConfig:
    """Project config from SSM: one source (one cache) for every service of the process, with the
    campaigns its stop rules ended (a state in DynamoDB) overlaid."""
    settings = get_settings()
    return CampaignStateConfig(
        SSMConfigSource(settings.config_prefix, settings.config_max_age_s),
        default_store(),
        settings.config_max_age_s,
    )


@cache
def default_service() -> CompletionService:
    retry = default_retry_queue()
    return CompletionService(
        config=default_config(),
        store=default_store(),
        providers=provider_for,
        store_retry=retry.enqueue if retry is not None else None,
        quotas=QuotaGate(DynamoQuotaStore(get_settings().table_name)),
    )


@cache
def default_keys() -> CachedKeys:
    """API key verification for `api/auth.py`, cached per process for `API_KEY_CACHE_S`."""
    settings = get_settings()
    return CachedKeys(DynamoKeyStore(settings.table_name).verify, settings.api_key_cache_s)


def default_services() -> Services:
    from handler.api.deps import Services

    store, config = default_store(), default_config()
    return Services(
        completions=default_service(),
        keys=default_keys(),
        batches=default_batch_runtime,
        records=RecordsService(store, config),
        feedback=FeedbackService(store, config, stops=CampaignStops(store, config)),
        campaigns=CampaignResultsService(store, config),
        usage=UsageService(DynamoUsageStore(get_settings().table_name), config),
        models=ModelsService(config, config.project_names),
    )


def create_app() -> FastAPI:
    """The HTTP app with the real adapters (built on its first request)."""
    from handler.api.app import create_app as build

    return build(default_services)


_batch_runtime: Runtime | None = None
_batch_lock = threading.Lock()


def default_batch_runtime() -> Runtime:
    """The process's batch runtime; rebuilt when the settings were reset (tests, local commands)."""
    from handler.batch.runtime import Runtime

    global _batch_runtime
    settings = get_settings()
    with _batch_lock:
        if _batch_runtime is None or _batch_runtime.settings is not settings:
            _batch_runtime = Runtime(settings, default_service)
        return _batch_runtime


def reset() -> None:
    """Forget the built services (tests change settings between cases)."""
    default_service.cache_clear()
    default_config.cache_clear()
    default_keys.cache_clear()
    default_store.cache_clear()
    default_retry_queue.cache_clear()
    default_payloads.cache_clear()
    get_settings.cache_clear()
