"""Report artefacts (screenshots) are kept under tests/artifacts/ and named in pytest's summary."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
_KEPT = pytest.StashKey[list[Path]]()


@pytest.fixture
def keep_artifact(request: pytest.FixtureRequest) -> Callable[[str], Path]:
    """The path to write an artefact to; it is listed at the end of the run."""

    def keep(name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / name
        request.config.stash.setdefault(_KEPT, []).append(path)
        print(f"artefact: {path}")
        return path

    return keep


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    for path in config.stash.get(_KEPT, []):
        if path.exists():
            terminalreporter.write_line(f"experiments artefact: {path}")
