"""Batch knobs, from the environment (names in capitals: `BATCH_LINES_PER_MESSAGE=20`, ...)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class BatchSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

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
