"""Config rules for tools and campaigns: a bad file is refused with the field named; the shipped
examples validate, round-trip through SSM, and `make dev`'s lab campaign splits offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gatewayctl.cli import main as cli
from gatewayctl.config_files import load_file
from tests.conftest import CONFIG_DIR

BASE: dict[str, Any] = {
    "project": "p",
    "default_model": "a",
    "models": {"a": {"provider": "echo"}, "b": {"provider": "echo"}},
}
TOOL = {"description": "d", "target": {"type": "http", "url": "https://x.example/t"}}
ID1, ID2 = "76d1fab3-214c-47ef-bb04-16270639bf89", "76d1fab3-214c-47ef-bb04-16270639bf80"

BAD: dict[str, tuple[dict[str, Any], str]] = {
    "tool id not a function name": ({"tools": {"get.weather": TOOL}}, "tools.get.weather"),
    "tool target unknown type": (
        {"tools": {"t": {"description": "d", "target": {"type": "ftp", "url": "x"}}}},
        "tools.t.target",
    ),
    "tool url not http": (
        {"tools": {"t": {**TOOL, "target": {"type": "http", "url": "file:///etc"}}}},
        "url",
    ),
    "tool timeout too long": (
        {"tools": {"t": {**TOOL, "target": {"type": "lambda", "function": "f", "timeout_s": 600}}}},
        "timeout_s",
    ),
    "variant not a model": (
        {"campaigns": {"c": {"id": ID1, "variants": {"zzz": 1}}}},
        "campaigns.c.variants",
    ),
    "no positive weight": ({"campaigns": {"c": {"id": ID1, "variants": {"a": 0}}}}, "campaigns.c.variants"),
    "id not a uuid": ({"campaigns": {"c": {"id": "nope", "variants": {"a": 1}}}}, "campaigns.c.id"),
    "two active": (
        {"campaigns": {"c": {"id": ID1, "variants": {"a": 1}}, "d": {"id": ID2, "variants": {"b": 1}}}},
        "at most one campaign may be active",
    ),
    "same id twice": (
        {
            "campaigns": {
                "c": {"id": ID1, "variants": {"a": 1}},
                "d": {"id": ID1, "status": "ended", "variants": {"b": 1}},
            }
        },
        "same id",
    ),
    "bad status": ({"campaigns": {"c": {"id": ID1, "status": "running", "variants": {"a": 1}}}}, "status"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_tool_or_campaign_config_is_refused_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    import yaml

    extra, named = BAD[case]
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({**BASE, **extra}))
    assert cli(["config", "validate", str(path)]) == 2
    assert named in capsys.readouterr().err


def test_example_project_validates_and_round_trips_through_ssm(aws: dict[str, str]) -> None:
    import boto3

    from gatewayctl.config_files import push
    from handler.config.source import SSMConfigSource

    config = load_file(CONFIG_DIR / "examples" / "support-bot.yaml")
    assert set(config.tools) == {"order_status", "refund_policy", "escalate"}
    assert config.active_campaign() is not None and config.active_campaign()[0] == "haiku-vs-llama"  # type: ignore[index]
    push(config, "/chat-gateway", boto3.client("ssm"))
    assert SSMConfigSource("/chat-gateway", 0).project("support-bot") == config


def test_lab_project_splits_offline(client: TestClient) -> None:
    served = set()
    for _ in range(40):
        body = client.post(
            "/api/v1/chat/completions",
            json={"model": "lab", "messages": [{"role": "user", "content": "hi"}], "store": False},
        ).json()
        served.add((body["choices"][0]["model"], body["choices"][0]["message"]["content"]))
    assert served == {("lab/concise", "[concise] hi"), ("lab/verbose", "[verbose] hi")}
