"""The app under uvicorn with table keys, and openai SDK clients for it: one key per project."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import boto3
import openai
import pytest

from gatewayctl.local.batch import Pipeline
from tests.servers import serve_app


@pytest.fixture
def gateway(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The app under uvicorn with table keys (a deployment's auth): one key per project."""
    from handler import wiring
    from handler.entrypoints.batch import lambda_handler
    from handler.store.keys import DynamoKeyStore

    monkeypatch.setenv("AUTH_MODE", "keys")
    wiring.reset()
    keys = {p: DynamoKeyStore("chat-gateway").create((p,), name=p)[1] for p in ("demo", "lab")}
    pipeline = Pipeline(
        lambda_handler, aws["BUCKET_NAME"], aws["BATCH_QUEUE_URL"], boto3.client("sqs"), boto3.client("s3")
    )
    with serve_app(wiring.create_app()) as url:
        clients = {
            p: openai.OpenAI(base_url=f"{url}/api/v1", api_key=key, max_retries=0, timeout=30)
            for p, key in keys.items()
        }
        yield {"clients": clients, "pipeline": pipeline, "url": url}
    wiring.reset()


def jsonl(lines: list[str]) -> io.BytesIO:
    return io.BytesIO(("\n".join(lines) + "\n").encode())
