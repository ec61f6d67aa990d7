"""Getting a model to answer: n fan-out, retries, the time-to-first-token deadline and fallbacks.

`start()` returns only once a model has produced its first event (content, a tool call or a finish)
within the deadline; the caller holds the HTTP status and SSE headers until then, so a late model
can still be abandoned for a fallback without the client noticing. An abandoned stream is closed at
once, which closes its upstream connection: we stop paying for it.

Each step of the plan's chain (a model, its retries, its own `max_ttft_ms` window) is tried in
order: the first window counted from the request's arrival, a fallback's from the moment it is tried
(a window shared with the model that just used it all up would leave the fallback no time at all).
The stored TTFT is always measured from arrival. Time comes from a `Clock`, so that the unit tests
drive deadlines, retries and backoff with a virtual one instead of wall-clock bounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

from handler.errors import GatewayError, TTFTExceeded, UpstreamError
from handler.providers.base import (
    Event,
    ModelCall,
    Provider,
    TextDelta,
    UsageReport,
    is_retryable,
)
from handler.store.records import Attempt

if TYPE_CHECKING:
    from handler.completions.planning import Step

ProviderLookup = Callable[[str], Provider]


class Clock(Protocol):
    """Where the engine reads time, sleeps, and bounds a wait."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...

    def timeout(self, seconds: float | None) -> AbstractAsyncContextManager[object]: ...


class RealClock:
    def now(self) -> float:
        return time.perf_counter()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def timeout(self, seconds: float | None) -> AbstractAsyncContextManager[object]:
        return asyncio.timeout(seconds)


REAL_CLOCK = RealClock()


async def fan_out(provider: Provider, call: ModelCall) -> AsyncGenerator[Event, None]:
    """One stream of `call.n` choices: native when the provider has `n`, else parallel calls."""
    if call.n == 1 or provider.supports_n:
        async for event in provider.stream(call):
            yield event
        return

    queue: asyncio.Queue[tuple[int, Event | BaseException | None]] = asyncio.Queue()
    single = replace(call, n=1)

    async def pump(index: int) -> None:
        try:
            async for event in provider.stream(single):
                if not isinstance(event, UsageReport):
                    event = replace(event, index=index)
                await queue.put((index, event))
            await queue.put((index, None))
        except BaseException as exc:  # handed to the consumer, which decides
            await queue.put((index, exc))

    tasks = [asyncio.create_task(pump(i)) for i in range(call.n)]
    try:
        remaining = call.n
        while remaining:
            _, item = await queue.get()
            if item is None:
                remaining -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@dataclass
class Started:
    """A model that answered in time: its first events, and the rest of its stream."""

    model_name: str
    first: list[Event]
    rest: AsyncIterator[Event]
    ttft_ms: float | None
    attempts: list[Attempt] = field(default_factory=list)
    idle_s: float | None = None  # the longest wait between two chunks (completions/deadlines.py)
    until: float | None = None  # event-loop time by which the answer must have ended
    _bounded: AsyncGenerator[Event, None] | None = None

    async def events(self) -> AsyncIterator[Event]:
        for event in self.first:
            yield event
        rest = self.rest
        if self.idle_s is not None or self.until is not None:
            from handler.completions.deadlines import bounded

            rest = self._bounded = bounded(self.rest, idle_s=self.idle_s, deadline=self.until)
        async for event in rest:
            yield event

    async def aclose(self) -> None:
        if self._bounded is not None:
            with contextlib.suppress(Exception):
                await self._bounded.aclose()
        aclose = getattr(self.rest, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()


def _is_first_output(event: Event) -> bool:
    if isinstance(event, TextDelta):
        return bool(event.text)
    return not isinstance(event, UsageReport)  # a tool call or a finish is an answer too


async def _first_output(stream: AsyncIterator[Event], within: float | None, clock: Clock) -> list[Event]:
    """Read until the first content event, within `within` seconds overall (TimeoutError if not).

    The read stays in this task (no `wait_for` task), so the stream is later read on by the same
    task that began it; on timeout the cancellation goes into the provider's pending read.
    """
    seen: list[Event] = []
    async with clock.timeout(within):
        async for event in stream:
            seen.append(event)
            if _is_first_output(event):
                return seen
    return seen  # an empty stream: the model finished without output


def _backoff(attempt: int) -> float:
    """Full-jitter exponential backoff: 0..(100 ms * 2^attempt), capped at 2 s."""
    return random.uniform(0, min(2.0, 0.1 * 2**attempt))


async def start(
    call: ModelCall,
    chain: Sequence[Step],
    providers: ProviderLookup,
    *,
    received_at: float,
    clock: Clock = REAL_CLOCK,
    until: float | None = None,
) -> Started:
    """Try each step of the chain in order until one produces output before its deadline.

    Each attempt also waits at most its step's `first_byte_s` for its first output, and nothing
    waits past `until` (clock time: the function's own timeout, less a margin)."""
    attempts: list[Attempt] = []
    last_error: GatewayError | None = None
    timed_out = False  # whether the last model tried ran out of time (else it failed)
    tried: list[str] = []

    def ms(since: float) -> float:
        return round((clock.now() - since) * 1000, 3)

    for position, step in enumerate(chain):
        model_name = step.model_name
        window_start = received_at if position == 0 else clock.now()
        deadline = window_start + step.deadline_ms / 1000 if step.deadline_ms else None
        provider = providers(model_name)
        tried.append(model_name)
        timed_out = False
        for attempt in range(step.max_retries + 1):
            remaining = None if deadline is None else deadline - clock.now()
            if remaining is not None and remaining <= 0:
                timed_out = True
                attempts.append(Attempt(model=model_name, outcome="ttft_exceeded", detail="no time left"))
                break
            began = clock.now()
            stream = fan_out(provider, call)
            bounds = (remaining, step.first_byte_s, None if until is None else until - began)
            within = min((b for b in bounds if b is not None), default=None)
            try:
                first = await _first_output(stream, within, clock)
            except TimeoutError:
                await stream.aclose()
                timed_out = True
                attempts.append(Attempt(model=model_name, outcome="ttft_exceeded", duration_ms=ms(began)))
                break  # this model is too slow: its fallback, not a retry
            except GatewayError as exc:
                await stream.aclose()
                attempts.append(
                    Attempt(model=model_name, outcome="error", detail=exc.message, duration_ms=ms(began))
                )
                last_error = exc
                if not is_retryable(exc) or attempt == step.max_retries:
                    break
                pause = _backoff(attempt)
                if deadline is not None and clock.now() + pause >= deadline:
                    break
                await clock.sleep(pause)
                continue
            except Exception as exc:
                await stream.aclose()
                kind = type(exc).__name__
                attempts.append(
                    Attempt(model=model_name, outcome="error", detail=kind, duration_ms=ms(began))
                )
                last_error = UpstreamError("the model provider failed unexpectedly")
                break
            attempts.append(Attempt(model=model_name, outcome="ok", duration_ms=ms(began)))
            ttft = (clock.now() - received_at) * 1000 if first else None
            end = None
            if until is not None:
                end = asyncio.get_running_loop().time() + (until - clock.now())
            return Started(model_name, first, stream, ttft, attempts, step.idle_s, end)

    error: GatewayError
    if timed_out or last_error is None:
        error = TTFTExceeded(
            f"no model produced a first token within its max_ttft_ms (tried: {', '.join(tried) or 'none'})"
        )
    else:
        error = last_error
    error.attempts = attempts
    raise error
