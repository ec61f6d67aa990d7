"""Config files: validated with the field named, written to SSM, read back the same through Powertools."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from gatewayctl.cli import main as cli
from gatewayctl.config_files import load_file
from handler.config.source import SSMConfigSource
from handler.errors import ConfigError, NotFound
from tests.conftest import CONFIG_DIR, TEST_CONFIG_DIR

GOOD = """
project: shop
default_model: fast
limits: {max_tokens: 512, max_n: 2}
system_prompt: {template: "You sell {{ product }}."}
models:
  fast: {provider: echo, fallbacks: [gpt]}
  gpt: {provider: openai, base_url: "https://llm.internal/v1", model: gpt-4o-mini, api_key_param: /cg/secrets/openai}
  claude: {provider: bedrock, model_id: anthropic.claude-3-haiku-20240307-v1:0, region: eu-west-1}
"""

BAD = {
    "unknown default model": ("default_model: nope", "default_model"),
    "typo in a limit": ("limits: {max_tokns: 5}", "limits.max_tokns"),
    "unknown provider": ("models: {fast: {provider: gemini}}", "models.fast"),
    "fallback not a model": ("models: {fast: {provider: echo, fallbacks: [ghost]}}", "fallbacks"),
    "openai without base_url": (
        "models: {fast: {provider: openai, model: m}}",
        "models.fast.openai.base_url",
    ),
    "negative max_n": ("limits: {max_n: -1}", "limits.max_n"),
}


def write(tmp_path: Path, text: str, name: str = "shop.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def with_override(override: str) -> str:
    """GOOD with one top-level key replaced."""
    key = override.split(":", 1)[0]
    lines = [line for line in GOOD.strip().splitlines()]
    out, skipping = [], False
    for line in lines:
        if line.startswith(f"{key}:"):
            out.append(override)
            skipping = True
            continue
        if skipping and line.startswith("  "):
            continue
        skipping = False
        out.append(line)
    if not any(line.startswith(f"{key}:") for line in lines):
        out.append(override)
    return "\n".join(out)


@pytest.mark.unit
@pytest.mark.parametrize("folder", [CONFIG_DIR, CONFIG_DIR / "examples", TEST_CONFIG_DIR])
def test_shipped_and_test_configs_are_valid(folder: Path) -> None:
    """config/ (what `make dev` loads), config/examples/ and the suite's own projects."""
    paths = sorted(folder.glob("*.yaml"))
    assert paths, f"no config files in {folder}"
    projects = [load_file(path).project for path in paths]
    assert len(set(projects)) == len(projects)


@pytest.mark.unit
@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_file_is_refused_with_the_field_named_before_any_write(
    aws: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    override, field = BAD[case]
    good = write(tmp_path, GOOD, "a-good.yaml")
    bad = write(tmp_path, with_override(override))
    assert cli(["config", "push", str(good), str(bad), "--prefix", "/cg"]) == 2
    assert field in capsys.readouterr().err
    names = boto3.client("ssm").describe_parameters()["Parameters"]
    assert not [p for p in names if p["Name"].startswith("/cg/")]  # the good file was not written either


@pytest.mark.unit
def test_push_then_load_round_trips_and_prunes(aws: dict[str, str], tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    assert cli(["config", "validate", str(path)]) == 0
    assert cli(["config", "push", str(path), "--prefix", "/cg"]) == 0
    source = SSMConfigSource("/cg", max_age_s=0)
    assert source.project("shop") == load_file(path)

    smaller = GOOD.replace(
        "  claude: {provider: bedrock, model_id: anthropic.claude-3-haiku-20240307-v1:0, region: eu-west-1}\n",
        "",
    )
    assert cli(["config", "push", str(write(tmp_path, smaller)), "--prefix", "/cg"]) == 0
    assert "claude" not in source.project("shop").models


@pytest.mark.unit
def test_unknown_project_is_not_found(aws: dict[str, str]) -> None:
    source = SSMConfigSource("/chat-gateway", max_age_s=60)
    with pytest.raises(NotFound):
        source.project("ghost")
    with pytest.raises(NotFound):
        source.project("../etc")


@pytest.mark.unit
def test_config_is_cached_for_max_age(aws: dict[str, str]) -> None:
    source = SSMConfigSource("/chat-gateway", max_age_s=300)
    first = source.project("demo")
    boto3.client("ssm").delete_parameters(Names=["/chat-gateway/projects/demo/project"])
    assert source.project("demo") is first  # no SSM call, no re-validation


@pytest.mark.unit
def test_invalid_config_in_ssm_is_a_config_error(aws: dict[str, str]) -> None:
    boto3.client("ssm").put_parameter(
        Name="/chat-gateway/projects/broken/project", Value='{"default_model": "x"}', Type="String"
    )
    with pytest.raises(ConfigError, match="models"):
        SSMConfigSource("/chat-gateway", max_age_s=0).project("broken")


@pytest.mark.unit
def test_secret_is_read_decrypted(aws: dict[str, str]) -> None:
    boto3.client("ssm").put_parameter(Name="/cg/secrets/k", Value="s3cr3t", Type="SecureString")
    assert SSMConfigSource("/cg", max_age_s=0).secret("/cg/secrets/k") == "s3cr3t"


@pytest.mark.unit
def test_push_defaults_to_the_configured_prefix(
    aws: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --prefix the command writes where the gateway reads: CONFIG_PREFIX, via the settings."""
    from handler import wiring

    monkeypatch.setenv("CONFIG_PREFIX", "/elsewhere")
    wiring.reset()
    assert cli(["config", "push", str(write(tmp_path, GOOD))]) == 0
    assert "under /elsewhere/projects/shop" in capsys.readouterr().out
    assert SSMConfigSource("/elsewhere", max_age_s=0).project("shop") == load_file(tmp_path / "shop.yaml")
