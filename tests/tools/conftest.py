"""Server-side tool fixtures: a real HTTP tool on 127.0.0.1, a Lambda tool on moto, a project using both."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from tests.conftest import put_project
from tests.fakes.http_server import FakeBase, Request, Response, json_bytes

SECRET_PARAM = "/chat-gateway/secrets/weather-tool"
SECRET_VALUE = "Bearer tool-s3cret"
LAMBDA_NAME = "lookup-tool"


class ToolServer(FakeBase):
    """HTTP tools by path: `/weather` answers from its arguments, `/fail` is a 500, `/slow` holds at
    the gate (until `release()` or the client leaves), `/text` answers plain text."""

    async def handle(self, request: Request, response: Response) -> None:
        if request.path == "/weather":
            args = request.json() or {}
            await response.full(
                200,
                json_bytes({"forecast": f"sunny over {args.get('query')}"}),
                {"Content-Type": "application/json"},
            )
        elif request.path == "/fail":
            await response.full(500, b"database is down", {"Content-Type": "text/plain"})
        elif request.path == "/slow":
            await self.hold_at_gate(response)
            await response.full(200, b"late", {"Content-Type": "text/plain"})
        else:
            await response.full(200, b"plain text result", {"Content-Type": "text/plain"})


@pytest.fixture
def tool_server() -> Iterator[ToolServer]:
    with ToolServer() as server:
        yield server


@pytest.fixture
def lambda_tool(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    """A Lambda function on moto's docker-less Lambda, which answers each invoke with its payload
    (so a test sees exactly what the gateway sent) unless results are queued."""
    from moto.core.models import default_user_config  # type: ignore[attr-defined]

    monkeypatch.setitem(default_user_config, "lambda", {"use_docker": False})
    iam = boto3.client("iam")
    role = iam.create_role(
        RoleName="tool-role",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    boto3.client("lambda").create_function(
        FunctionName=LAMBDA_NAME,
        Runtime="python3.13",
        Role=role,
        Handler="index.handler",
        Code={"ZipFile": b"not run by the docker-less backend"},
    )
    return LAMBDA_NAME


def queue_lambda_results(*results: str) -> None:
    """The next invokes of the docker-less Lambda answer these payloads, in order."""
    from moto.awslambda_simple.models import lambda_simple_backends
    from moto.core import DEFAULT_ACCOUNT_ID  # type: ignore[attr-defined]

    lambda_simple_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].lambda_simple_results_queue.extend(results)


def tool_project(server: ToolServer, lambda_name: str, name: str = "tooly", **extra: Any) -> str:
    """An echo model in `call_all` tool mode and three tools: HTTP `weather` (with an auth header
    from an SSM SecureString), Lambda `lookup`, and HTTP `shout`, configured off."""
    boto3.client("ssm").put_parameter(
        Name=SECRET_PARAM, Value=SECRET_VALUE, Type="SecureString", Overwrite=True
    )
    config: dict[str, Any] = {
        "project": name,
        "default_model": "echo",
        "models": {"echo": {"provider": "echo", "tool_mode": "call_all"}},
        "tools": {
            "weather": {
                "description": "The forecast for a place",
                "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}},
                "target": {
                    "type": "http",
                    "url": f"{server.url}/weather",
                    "auth_param": SECRET_PARAM,
                    "timeout_s": 5,
                },
            },
            "lookup": {
                "description": "Look a thing up",
                "target": {"type": "lambda", "function": lambda_name},
            },
            "shout": {
                "description": "Shout",
                "enabled": False,
                "target": {"type": "http", "url": f"{server.url}/text"},
            },
        },
    }
    config.update(extra)
    put_project(config)
    return name


def ask(project: str, text: str = "Paris", **extra: Any) -> dict[str, Any]:
    return {"model": project, "messages": [{"role": "user", "content": text}], **extra}
