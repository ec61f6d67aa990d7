"""The next item of an async iterator now, if it is already there: no waiting, no extra task.

A stream relay wants every event that is already available (parsed from bytes the provider has
buffered) in one ASGI body message, one write, yet must never hold back an event that is alone.
`__anext__()` of an async generator is an awaitable with `send`/`throw`: `next_now` runs its
first step by hand, as the event loop's Task would. Either the step finishes (the item was ready)
or it yields the future it waits on (the next item needs I/O); `Pending` then finishes that same
step under the caller's task, exactly as `await` would have (the future goes up to the Task,
cancellation comes down into the iterator). Nothing is run twice and nothing is lost.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Coroutine, Generator
from typing import Any, Generic, Protocol, TypeVar, cast

T = TypeVar("T")


class _Step(Protocol):
    def send(self, value: Any, /) -> Any: ...
    def throw(self, exc: BaseException, /) -> Any: ...


class Pending(Generic[T]):
    """The rest of one `__anext__` step that had to wait: await it (once) for the item."""

    __slots__ = ("_step", "_waiting")

    def __init__(self, step: _Step, waiting: Any) -> None:
        self._step = step
        self._waiting = waiting  # what the step yielded: a future (or None, a bare yield)

    def __await__(self) -> Generator[Any, Any, T]:
        step, waiting = self._step, self._waiting
        while True:
            try:
                sent = yield waiting
            except BaseException as exc:  # cancelled (or thrown into) while waiting: pass it down
                try:
                    waiting = step.throw(exc)
                except StopIteration as done:
                    return cast(T, done.value)
            else:
                try:
                    waiting = step.send(sent)
                except StopIteration as done:
                    return cast(T, done.value)

    async def abandon(self, exc: BaseException) -> None:
        """Never awaited (the caller failed first): unwind the iterator as a cancellation there
        would have, letting its cleanup (closing an upstream response) finish. Never raises."""
        try:
            waiting = self._step.throw(exc)
        except BaseException:  # the usual end: the iterator let the exception out
            return
        with contextlib.suppress(BaseException):
            await Pending(self._step, waiting)


def next_now(iterator: AsyncIterator[T]) -> T | Pending[T]:
    """The next item if it needs no I/O, else a `Pending` to await. StopAsyncIteration at the end."""
    step = cast(_Step, iterator.__anext__())
    try:
        waiting = step.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    return Pending(step, waiting)


def run_now(work: Coroutine[Any, Any, T]) -> T | Pending[T]:
    """`work`'s result if it finishes without waiting, else a `Pending` to await for it."""
    try:
        waiting = work.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    return Pending(work, waiting)
