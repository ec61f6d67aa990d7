"""`python -m gatewayctl`: one command for operators and developers, reading the gateway's settings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from gatewayctl.cli import LOCAL_COMMANDS, main
from tests.conftest import ROOT, TEST_CONFIG_DIR


@pytest.mark.unit
def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("config", "keys", *LOCAL_COMMANDS):
        assert command in out


@pytest.mark.unit
def test_keys_go_to_the_configured_table(
    aws: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --table the key is written where the gateway verifies keys: TABLE_NAME."""
    from gatewayctl.local.bootstrap import TABLE_KEYS
    from handler import wiring

    boto3.client("dynamodb").create_table(TableName="other-table", **TABLE_KEYS)
    monkeypatch.setenv("TABLE_NAME", "other-table")
    wiring.reset()
    assert main(["keys", "create", "--project", "demo"]) == 0
    assert "in table other-table" in capsys.readouterr().err
    assert boto3.client("dynamodb").scan(TableName="other-table")["Count"] == 1
    assert main(["keys", "list", "--table", aws["TABLE_NAME"]]) == 0
    assert capsys.readouterr().out == ""  # nothing in the default table


@pytest.mark.unit
def test_dev_takes_no_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dev", "--port", "1"]) == 2
    assert "PORT" in capsys.readouterr().err


def test_the_module_runs_as_a_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gatewayctl", "config", "validate", str(TEST_CONFIG_DIR / "demo.yaml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok: demo (2 models")


@pytest.mark.unit
def test_keys_carry_limits_set_at_creation_and_changed_by_update(
    aws: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    from handler.config.models import Quotas
    from handler.store.keys import DynamoKeyStore, key_id_of

    assert main(["keys", "create", "--project", "demo", "--rpm", "5", "--usd-per-month", "12.5"]) == 0
    key_id = key_id_of(capsys.readouterr().out.strip())
    assert key_id is not None
    store = DynamoKeyStore(aws["TABLE_NAME"])
    stored = store.get(key_id)
    assert stored is not None
    assert stored.quotas == Quotas(requests_per_minute=5, usd_per_month=12.5)
    assert main(["keys", "update", key_id, "--tpd", "1000", "--rpm", "0"]) == 0  # 0 removes a limit
    assert "tokens_per_day=1000" in capsys.readouterr().out
    stored = store.get(key_id)
    assert stored is not None
    assert stored.quotas == Quotas(tokens_per_day=1000, usd_per_month=12.5)
    assert main(["keys", "update", "0123456789abcdef", "--rpm", "1"]) == 1
    assert "no key" in capsys.readouterr().err
    assert main(["keys", "create", "--project", "demo", "--rpm", "-3"]) == 2
    assert "requests_per_minute" in capsys.readouterr().err


def test_a_command_without_aws_settings_says_in_one_line_what_to_set(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # It used to be botocore's NoRegionError traceback.
    from gatewayctl.cli import main as gatewayctl
    from handler import aws

    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    aws.reset_clients()
    try:
        assert gatewayctl(["keys", "list"]) == 2
    finally:
        aws.reset_clients()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "AWS_REGION" in err and "Traceback" not in err
