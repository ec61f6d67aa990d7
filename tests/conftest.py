"""Shared fixtures: AWS emulated by moto in-process, the suite's own projects loaded, the real app."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import moto  # noqa: F401 - adds its botocore hooks before any test builds the shared session
import pytest
from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[1]
# What `make dev` serves and users edit: tests only check that it is valid, never what it says.
CONFIG_DIR = ROOT / "config"
# The projects every emulated stack of the suite holds (`demo`, `lab`): the tests' own, so that
# editing config/ cannot break a test. See tests/fixtures/config/README.md.
TEST_CONFIG_DIR = ROOT / "tests" / "fixtures" / "config"
EVENTS_DIR = ROOT / "events"

DEV_KEY = "sk-local-dev"
AUTH = {"Authorization": f"Bearer {DEV_KEY}"}

os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_DEV", "false")


@contextmanager
def emulated_aws(mp: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """moto's mock_aws with the stack's resources and the suite's projects (TEST_CONFIG_DIR) loaded,
    the environment set (dev auth) through `mp`; clients and the service are built afresh inside."""
    from moto import mock_aws

    from gatewayctl.local.bootstrap import LOCAL_ENV, create_resources, load_configs
    from handler import aws as aws_clients
    from handler import wiring

    mp.delenv("AWS_ENDPOINT_URL", raising=False)
    for key, value in {**LOCAL_ENV, "AUTH_MODE": "dev", "DEV_API_KEY": DEV_KEY}.items():
        mp.setenv(key, value)
    with mock_aws():
        session = aws_clients.boto3_session()
        env = dict(LOCAL_ENV)
        env.update(create_resources(session, env))
        for key, value in env.items():
            mp.setenv(key, value)
        assert load_configs(session, TEST_CONFIG_DIR, env["CONFIG_PREFIX"]), (
            f"no projects in {TEST_CONFIG_DIR}"
        )
        aws_clients.reset_clients()
        wiring.reset()
        try:
            yield env
        finally:
            aws_clients.reset_clients()
            wiring.reset()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The emulated stack for one test."""
    with emulated_aws(monkeypatch) as env:
        yield env


@pytest.fixture(scope="session", autouse=True)
def atomic_moto_dynamodb() -> None:
    """Each emulated DynamoDB write applies atomically, as DynamoDB's own do (moto's backend is
    not thread-safe); the local commands apply the same fix (gatewayctl/local/bootstrap.py)."""
    from gatewayctl.local.bootstrap import serialise_moto_dynamodb_writes

    serialise_moto_dynamodb_writes()


def put_project(config: dict[str, Any], prefix: str = "/chat-gateway") -> None:
    """Write one more project into the emulated SSM (inside the `aws` fixture)."""
    from gatewayctl.config_files import push
    from handler.config.models import ProjectConfig

    push(ProjectConfig.model_validate(config), prefix, boto3.client("ssm"))


@pytest.fixture
def client(aws: dict[str, str]) -> Iterator[TestClient]:
    from handler.wiring import create_app

    with TestClient(create_app(), raise_server_exceptions=False, headers=AUTH) as c:
        yield c


def table_items(table: str = "chat-gateway") -> list[dict[str, Any]]:
    return list(boto3.client("dynamodb").scan(TableName=table).get("Items", []))


def completion_items(table: str = "chat-gateway") -> list[dict[str, Any]]:
    """Only the completion records (not index, stats or feedback items)."""
    return [i for i in table_items(table) if i.get("sk", {}).get("S") == "COMPLETION"]
