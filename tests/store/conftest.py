"""The store against the emulated table, without the HTTP app: one emulation for the whole folder
(setting one up costs about a second), test data kept apart by unique ids and projects instead of
an emptied table."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import emulated_aws


@pytest.fixture(scope="package")
def store_aws() -> Iterator[dict[str, str]]:
    with pytest.MonkeyPatch.context() as mp, emulated_aws(mp) as env:
        yield env


@pytest.fixture
def store(store_aws: dict[str, str]) -> Any:
    from handler.store.dynamodb import DynamoCompletionStore

    return DynamoCompletionStore(store_aws["TABLE_NAME"])


@pytest.fixture
def ddb(store_aws: dict[str, str]) -> Any:
    """The shared botocore DynamoDB client the adapters use."""
    from handler import aws

    return aws.client("dynamodb")


@pytest.fixture
def make_record() -> Callable[..., Any]:
    """A CompletionRecord with fresh ids; fields given override."""
    from handler.store.records import CompletionRecord

    def make(**fields: Any) -> CompletionRecord:
        values: dict[str, Any] = {
            "completion_id": str(uuid.uuid4()),
            "request_id": f"chatcmpl-{uuid.uuid4().hex[:8]}",
            "session_id": str(uuid.uuid4()),
            "project": "demo",
            "model": "demo/echo",
            "provider": "echo",
            "created": 1_700_000_000.0,
            "content": "hello",
            **fields,
        }
        return CompletionRecord.model_validate(values)

    return make
