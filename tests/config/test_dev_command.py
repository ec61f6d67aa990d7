"""`make dev` as a new user meets it: CONFIG_DIR problems in one line, the environment to export."""

from __future__ import annotations

from pathlib import Path

import pytest

from gatewayctl.local.dev import exports, projects_in
from tests.conftest import TEST_CONFIG_DIR

pytestmark = pytest.mark.unit


def test_a_missing_or_empty_config_dir_is_an_error_naming_it(tmp_path: Path) -> None:
    # It used to start a server with no project, whose printed curl answered 404.
    with pytest.raises(SystemExit, match=r"CONFIG_DIR=.*nope: no such directory"):
        projects_in(tmp_path / "nope")
    with pytest.raises(SystemExit, match=rf"CONFIG_DIR={tmp_path}: no project file"):
        projects_in(tmp_path)


def test_a_bad_config_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("default_model: x\nmodels: {}\n")
    with pytest.raises(SystemExit) as exc:
        projects_in(tmp_path)
    message = str(exc.value)
    assert "\n" not in message and "broken.yaml" in message and "Traceback" not in message


def test_the_projects_loaded_and_the_environment_to_export() -> None:
    assert projects_in(TEST_CONFIG_DIR) == ["demo", "lab"]
    text = exports(
        {"AWS_ENDPOINT_URL": "http://127.0.0.1:5000", "AWS_REGION": "us-east-1", "TABLE_NAME": "t"}
    )
    assert text.splitlines() == [
        "export AWS_ENDPOINT_URL=http://127.0.0.1:5000",
        "export AWS_REGION=us-east-1",
        "export TABLE_NAME=t",
    ]
