"""The environment, parsed once into one typed object.

Every knob the functions read from their environment lives here, so that `template.yaml`, the local
dev server, the operator's tooling (`gatewayctl`) and the tests all speak the same names.
Powertools reads its own `POWERTOOLS_*` variables; the two that our code reads too are fields here.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Seconds uvicorn keeps an idle connection open (`--timeout-keep-alive` in src/run.sh, the dev
# server). Above what the Web Adapter and common clients keep idle connections for (60-90 s):
# uvicorn's 5 s default closes connections they are about to reuse, seen as connection resets.
UVICORN_KEEP_ALIVE_S = 120


class Settings(BaseModel):
    """Each field is read from the environment variable of the same name, in any case.

    A plain model, not pydantic-settings' BaseSettings: that package costs ~15 ms of import on every
    cold start for what `get_settings()` does in three lines (pydantic still parses the strings).
    A value out of its bounds is refused when the settings are first read.
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

    # AWS calls (DynamoDB, SQS, SSM, S3): a store that accepts connections but never answers costs
    # at most about attempts x (connect + read) before the record goes to the retry queue and reads
    # answer 503. botocore's standard retry mode retries read timeouts within the attempt budget.
    aws_connect_timeout_s: float = Field(default=2.0, gt=0, le=60)
    aws_read_timeout_s: float = Field(default=3.0, gt=0, le=300)
    aws_max_attempts: int = Field(default=2, ge=1, le=10)
    # S3 moves whole batch files and offloaded records: more time per read.
    aws_s3_read_timeout_s: float = Field(default=15.0, gt=0, le=300)
    # Seconds a client is told to wait (`Retry-After`) when the store or the key table is unavailable.
    store_retry_after_s: int = Field(default=2, ge=1, le=3600)

    # The largest answer (every choice's text and tool-call arguments, UTF-8 bytes) the gateway
    # relays: an upstream that never stops sending is cut there (`finish_reason: "length"`). Below
    # Lambda's 6 MB buffered response with room for the JSON around it.
    max_answer_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)

    # Model calls (per model: `timeouts: {connect_s, first_byte_s, idle_s}`, completions/deadlines.py).
    model_connect_timeout_s: float = Field(default=5.0, gt=0, le=60)
    model_first_byte_timeout_s: float = Field(default=60.0, gt=0, le=900)
    model_idle_timeout_s: float = Field(default=30.0, gt=0, le=900)
    # The function's own timeout (template.yaml sets it from the function's Timeout) less a margin:
    # no request waits past it without answering and storing what happened.
    function_timeout_s: float = Field(default=900.0, gt=0)
    deadline_margin_s: float = Field(default=3.0, ge=0)

    # Upstream calls.
    upstream_connect_timeout_s: float = 5.0
    upstream_read_timeout_s: float = 300.0

    # Streams: a `: keep-alive` SSE comment after this many seconds without an event (server-side
    # tool rounds can be long; API Gateway cuts a streamed response after 5 minutes idle). 0: none.
    sse_keepalive_s: float = Field(default=15.0, ge=0, le=240)

    # Auth. `auth_mode=dev` accepts DEV_API_KEY; it is only ever set by the local dev server.
    auth_mode: str = "keys"
    dev_api_key: str = "sk-local-dev"
    # Dev auth only: the projects whose `sk-local-<project>` key is accepted, scoped to that project
    # (comma-separated; `make dev` sets it to the projects it loaded).
    local_project_keys: str = ""
    # How long a key's verification is cached per instance: a revoked key stops working within this.
    api_key_cache_s: float = 30.0

    # Body size (bytes) refused with 413 before parsing.
    max_body_bytes: int = 4 * 1024 * 1024

    # Batches (`BATCH_LINES_PER_MESSAGE=20`, ...).
    idempotency_table_name: str = "chat-gateway-idempotency"
    # Lines per queue message: fewer messages to send and receive, and one counter update per
    # message. Bounded by DynamoDB's 100 items per transaction (the results + the counter).
    batch_lines_per_message: int = Field(default=10, ge=1, le=50)
    batch_message_bytes: int = Field(default=192_000, ge=4_096, le=240_000)
    # A request body or result line larger than this goes to S3 (batches/parts/) with a pointer.
    batch_inline_bytes: int = Field(default=48_000, ge=1_024, le=60_000)
    # Requests one worker invocation runs at once (across the up to 10 messages it receives).
    batch_concurrency: int = Field(default=32, ge=1, le=256)
    # Threads sending the queue messages of a file.
    batch_send_threads: int = Field(default=16, ge=1, le=64)
    # The queue's maxReceiveCount: on the last receive a line that keeps raising becomes an error
    # line, so that the batch still finishes. Set from the template's MaxReceiveCount.
    batch_max_receives: int = Field(default=5, ge=1)
    batch_result_ttl_days: int = Field(default=14, ge=1)
    # How long Powertools Idempotency remembers a finished request: longer than the queue keeps a
    # message (4 days), so every redelivery finds it.
    idempotency_ttl_s: int = Field(default=7 * 86_400, ge=60)
    # How long an assembler holds its claim before another worker may take over.
    batch_assembly_lease_s: int = Field(default=900, ge=60)

    # Powertools' own switches, read by `observability.record_completion` (which writes its EMF
    # documents itself) with Powertools' rule: POWERTOOLS_METRICS_DISABLED if set, else off in
    # POWERTOOLS_DEV mode.
    powertools_dev: bool = False
    powertools_metrics_disabled: bool | None = None

    @field_validator("log_content", "powertools_dev", "powertools_metrics_disabled", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @property
    def metrics_disabled(self) -> bool:
        if self.powertools_metrics_disabled is not None:
            return self.powertools_metrics_disabled
        return self.powertools_dev


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    env = {name.lower(): value for name, value in os.environ.items()}
    return Settings.model_validate({name: env[name] for name in Settings.model_fields if name in env})
