"""`python -m gatewayctl batch FILE` (`make batch`): its own emulation, a progress bar, and where the
output is."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gatewayctl.cli import main as gatewayctl
from gatewayctl.local.batch import main
from tests.batch.conftest import chat_line, good_lines
from tests.conftest import TEST_CONFIG_DIR


def test_the_command_runs_a_file_and_says_where_the_output_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONFIG_DIR", str(TEST_CONFIG_DIR))  # the suite's projects, not config/
    path = tmp_path / "requests.jsonl"
    lines = [*good_lines(12), "not json", chat_line("req-0", "repeated id")]
    path.write_text("\ufeff" + "\n".join(lines) + "\n", encoding="utf-8")  # an editor's byte order mark too
    environ = dict(os.environ)

    assert main([str(path)]) == 0

    printed = capsys.readouterr()
    out = tmp_path / "requests.output.jsonl"
    assert "completed" in printed.out and "14 lines, 12 completed, 2 failed" in printed.out
    assert f"batches/output/requests.jsonl (emulated) -> saved to {out}" in printed.out
    assert "100%" in printed.err  # the progress bar
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 14 and [x["error"]["code"] for x in lines[12:]] == [
        "invalid_json",
        "duplicate_custom_id",
    ]
    assert dict(os.environ) == environ  # the command leaves the environment as it found it


@pytest.mark.unit
def test_the_command_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path / "nope.jsonl")])
    assert exc.value.code == 2


@pytest.mark.unit
def test_gatewayctl_hands_its_options_to_the_batch_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        gatewayctl(["batch", "--no-progress", str(tmp_path / "nope.jsonl")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "python -m gatewayctl batch" in err and "nope.jsonl: no such file" in err


def test_a_file_in_the_repository_saves_its_output_outside_it_with_the_total_shown_from_the_start(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # `make batch FILE=events/batch_example.jsonl` left events/batch_example.output.jsonl untracked
    # in the repository; its progress bar showed nothing, then jumped.
    from gatewayctl.local.batch import SOURCE_TREE, default_output
    from tests.conftest import EVENTS_DIR

    monkeypatch.setenv("CONFIG_DIR", str(TEST_CONFIG_DIR))
    example = EVENTS_DIR / "batch_example.jsonl"
    out = default_output(example)
    assert not out.resolve().is_relative_to(SOURCE_TREE)
    out.unlink(missing_ok=True)
    before = sorted(EVENTS_DIR.iterdir())

    assert main([str(example)]) == 0

    assert sorted(EVENTS_DIR.iterdir()) == before and out.is_file()
    printed = capsys.readouterr()
    assert f"saved to {out}" in printed.out
    lines = len(example.read_bytes().splitlines())
    assert f"0/{lines}" in printed.err and f"{lines}/{lines}" in printed.err  # the total from the start
    assert "completed=2" in printed.err and "failed=1" in printed.err  # live counts
