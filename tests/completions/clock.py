"""A virtual clock for the engine: time moves only when a fake provider or a backoff sleeps.

`timeout(s)` ends the wait inside it exactly when virtual time reaches its deadline, as
`asyncio.timeout` would in real time, so that deadline, retry and fallback tests assert exact
milliseconds instead of wall-clock bounds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager


class _Expired(Exception):
    """Raised into the sleeper whose sleep crosses an active deadline."""


class VirtualClock:
    def __init__(self) -> None:
        self.t = 0.0
        self.slept: list[float] = []  # the engine's own pauses (backoff), in order
        self._deadlines: list[float] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        await self.advance(seconds)

    async def advance(self, seconds: float) -> None:
        """Let `seconds` pass for whoever awaits this (a slow model, say)."""
        target = self.t + seconds
        if self._deadlines and min(self._deadlines) <= target:
            self.t = min(self._deadlines)
            raise _Expired
        self.t = target
        await asyncio.sleep(0)

    def timeout(self, seconds: float | None) -> AbstractAsyncContextManager[object]:
        return self._timeout(seconds)

    @asynccontextmanager
    async def _timeout(self, seconds: float | None) -> AsyncIterator[None]:
        if seconds is None:
            yield
            return
        deadline = self.t + seconds
        self._deadlines.append(deadline)
        try:
            yield
        except _Expired:
            if self.t >= deadline:
                raise TimeoutError from None
            raise
        finally:
            self._deadlines.remove(deadline)
