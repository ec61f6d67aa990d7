"""Every model call is bounded in time: before its first byte, between two chunks, and overall.

A model with no deadline settings once waited 300 s on a stalled upstream (issue #11, C11). Each
model has `timeouts: {connect_s, first_byte_s, idle_s}` (config/models.py), defaulting to the
settings `MODEL_CONNECT_TIMEOUT_S`, `MODEL_FIRST_BYTE_TIMEOUT_S`, `MODEL_IDLE_TIMEOUT_S`; and no
request outlives the function: `FUNCTION_TIMEOUT_S` less `DEADLINE_MARGIN_S` after its arrival,
so that the answer is still ended and its record stored in time.

The idle bound costs the hot path two attribute writes and an increment per chunk: a periodic
watchdog (not a timer per chunk) cancels the read when no chunk arrived for `idle_s` while the
answer was waiting on the upstream (time the client takes to read is not the upstream's).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TypeVar

from handler.errors import UpstreamTimeout

T = TypeVar("T")


class _Watchdog:
    def __init__(self, idle_s: float | None, deadline: float | None) -> None:
        self.idle_s = idle_s
        self.deadline = deadline  # event-loop time
        self.waiting = False
        self.count = 0
        self.fired: str | None = None
        self._last = -1
        self._idle_for = 0.0
        self.handle: asyncio.TimerHandle | None = None

    def tick(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[object], period: float) -> None:
        if self.fired is not None:
            return
        if self.waiting and self.count == self._last:
            self._idle_for += period
        else:
            self._idle_for = 0.0
        self._last = self.count
        if self.waiting:
            if self.idle_s is not None and self._idle_for >= self.idle_s:
                self.fired = f"no chunk from the upstream for {self.idle_s:g} s"
            elif self.deadline is not None and loop.time() >= self.deadline:
                self.fired = "the answer ran out of time (the function's timeout)"
            if self.fired is not None:
                task.cancel()
                return
        self.handle = loop.call_later(period, self.tick, loop, task, period)


async def bounded(
    stream: AsyncIterator[T], *, idle_s: float | None, deadline: float | None
) -> AsyncGenerator[T, None]:
    """`stream`'s items; UpstreamTimeout when none comes for `idle_s` while waiting for one, or
    when the loop time passes `deadline`."""
    if idle_s is None and deadline is None:
        async for item in stream:
            yield item
        return
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    spans = [s for s in (idle_s, None if deadline is None else max(deadline - loop.time(), 0.01)) if s]
    period = max(min(min(spans) / 4, 1.0), 0.005)
    dog = _Watchdog(idle_s, deadline)
    dog.handle = loop.call_later(period, dog.tick, loop, task, period)
    try:
        while True:
            dog.waiting = True
            try:
                item = await stream.__anext__()
            except StopAsyncIteration:
                return
            except asyncio.CancelledError:
                if dog.fired is not None and task.uncancel() == 0:
                    raise UpstreamTimeout(dog.fired) from None
                raise
            finally:
                dog.waiting = False
            dog.count += 1
            yield item
    finally:
        if dog.handle is not None:
            dog.handle.cancel()
