"""The environment, parsed once into one typed object.

Every knob the functions read from their environment lives here, so that `template.yaml`, the local
dev server and the tests all speak the same names.
"""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, ConfigDict


class Settings(BaseModel):
    """Each field is read from the environment variable of the same name, in any case.

    A plain model, not pydantic-settings' BaseSettings: that package costs ~15 ms of import on every
    cold start for what `get_settings()` does in three lines (pydantic still parses the strings).
    """

    model_config = ConfigDict(extra="ignore")

    # Where things live.
    table_name: str = "chat-gateway"
    config_prefix: str = "/chat-gateway"
    config_max_age_s: int = 60
    bucket_name: str | None = None
    batch_queue_url: str | None = None
    store_retry_queue_url: str | None = None
    aws_region: str = "us-east-1"
    aws_endpoint_url: str | None = None  # the local emulation (moto server) when set

    # Records.
    completion_ttl_days: int = 0  # 0 keeps records forever
    log_content: bool = False  # message content in logs is off unless asked for

    # Upstream calls.
    upstream_connect_timeout_s: float = 5.0
    upstream_read_timeout_s: float = 300.0

    # Auth. `auth_mode=dev` accepts DEV_API_KEY; it is only ever set by the local dev server.
    auth_mode: str = "keys"
    dev_api_key: str = "sk-local-dev"
    # How long a key's verification is cached per instance: a revoked key stops working within this.
    api_key_cache_s: float = 30.0

    # Body size (bytes) refused with 413 before parsing.
    max_body_bytes: int = 4 * 1024 * 1024


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    env = {name.lower(): value for name, value in os.environ.items()}
    return Settings.model_validate({name: env[name] for name in Settings.model_fields if name in env})
