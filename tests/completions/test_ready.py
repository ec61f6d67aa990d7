"""`handler.ready`: an item that needs no I/O is taken at once; one that does is awaited in the same
task, exactly as `await` would, cancellation included (the stream relay and the JSON route rely on it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from handler import ready

pytestmark = pytest.mark.unit


async def _items(log: list[str], gate: asyncio.Event) -> AsyncIterator[int]:
    try:
        yield 1
        yield 2
        await gate.wait()  # "I/O": the next item is not there yet
        yield 3
    finally:
        log.append("closed")


def test_ready_items_come_at_once_and_a_waiting_one_is_awaited() -> None:
    async def run() -> list[object]:
        log: list[str] = []
        gate = asyncio.Event()
        items = _items(log, gate)
        first, second = ready.next_now(items), ready.next_now(items)
        third = ready.next_now(items)
        assert isinstance(third, ready.Pending)
        asyncio.get_running_loop().call_soon(gate.set)
        value = await third
        with pytest.raises(StopAsyncIteration):
            ready.next_now(items)
        return [first, second, value, log]

    assert asyncio.run(run()) == [1, 2, 3, ["closed"]]


def test_cancelling_the_awaiting_task_cancels_the_iterator_and_runs_its_cleanup() -> None:
    async def run() -> list[str]:
        log: list[str] = []
        items = _items(log, asyncio.Event())
        ready.next_now(items), ready.next_now(items)

        async def consume() -> None:
            pending = ready.next_now(items)
            assert isinstance(pending, ready.Pending)
            await pending

        task = asyncio.ensure_future(consume())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return log

    assert asyncio.run(run()) == ["closed"]


def test_an_abandoned_step_unwinds_the_iterator() -> None:
    async def run() -> list[str]:
        log: list[str] = []
        items = _items(log, asyncio.Event())
        ready.next_now(items), ready.next_now(items)
        pending = ready.next_now(items)
        assert isinstance(pending, ready.Pending)
        await pending.abandon(OSError("the client left"))
        await items.aclose()  # the generator is not left running
        return log

    assert asyncio.run(run()) == ["closed"]


def test_run_now_finishes_work_that_never_waits_without_a_task() -> None:
    async def instant() -> str:
        return "done"

    async def slow() -> str:
        await asyncio.sleep(0)
        return "later"

    async def run() -> tuple[object, object]:
        now = ready.run_now(instant())
        later = ready.run_now(slow())
        assert isinstance(later, ready.Pending)
        return now, await later

    assert asyncio.run(run()) == ("done", "later")
