"""Capture what the gateway logs, exactly as CloudWatch would get it (Powertools' JSON lines).

Powertools' handler holds the stdout of import time, which pytest's `capsys` does not replace, so
this adds a second handler with the same formatter, at DEBUG: a leak in a debug line counts too.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Captured:
    def __init__(self, stream: io.StringIO) -> None:
        self._stream = stream

    @property
    def text(self) -> str:
        return self._stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines() if line.startswith("{")]


@contextmanager
def captured_logs(level: int = logging.DEBUG) -> Iterator[Captured]:
    from handler.observability import logger

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    std = logging.getLogger("chat-gateway")
    previous = std.level
    std.addHandler(handler)
    std.setLevel(level)
    try:
        yield Captured(stream)
    finally:
        std.removeHandler(handler)
        std.setLevel(previous)
