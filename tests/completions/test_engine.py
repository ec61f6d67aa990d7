"""The engine alone: fan-out, retries with backoff, each model's own TTFT window, fallbacks.

Driven by a virtual clock (tests/completions/clock.py), so every timing below is exact.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from handler.completions import engine
from handler.completions.planning import Step
from handler.errors import TTFTExceeded, UpstreamError
from handler.providers.base import (
    Event,
    Finish,
    ModelCall,
    ProviderError,
    TextDelta,
    UsageReport,
)
from tests.completions.clock import VirtualClock

pytestmark = pytest.mark.unit

CALL = ModelCall(messages=[{"role": "user", "content": "hi"}])


class Scripted:
    """A provider whose calls follow a script: each entry is one call's behaviour."""

    supports_n = False

    def __init__(self, clock: VirtualClock, *calls: Callable[[], AsyncIterator[Event]]) -> None:
        self.clock = clock
        self.calls = list(calls)
        self.started = 0
        self.closed = 0

    async def stream(self, call: ModelCall) -> AsyncIterator[Event]:
        script = self.calls[min(self.started, len(self.calls) - 1)]
        self.started += 1
        try:
            async for event in script():
                yield event
        finally:
            self.closed += 1


def answers(clock: VirtualClock, after_s: float, text: str = "ok") -> Callable[[], AsyncIterator[Event]]:
    async def run() -> AsyncIterator[Event]:
        await clock.advance(after_s)
        yield TextDelta(0, text)
        yield Finish(0, "stop")

    return run


def fails(retryable: bool) -> Callable[[], AsyncIterator[Event]]:
    async def run() -> AsyncIterator[Event]:
        raise ProviderError("upstream said no", retryable=retryable)
        yield TextDelta(0, "")  # pragma: no cover - makes this a generator

    return run


def start(
    clock: VirtualClock, chain: list[Step], providers: dict[str, Scripted], call: ModelCall = CALL
) -> engine.Started:
    return asyncio.run(engine.start(call, chain, providers.__getitem__, received_at=clock.now(), clock=clock))


def test_first_model_in_time_is_used_and_ttft_measured_from_arrival() -> None:
    clock = VirtualClock()
    primary = Scripted(clock, answers(clock, 0.25))
    started = start(clock, [Step("a", 0, 1000)], {"a": primary})
    assert started.model_name == "a"
    assert started.ttft_ms == pytest.approx(250)
    assert [a.outcome for a in started.attempts] == ["ok"]


def test_a_slow_model_is_abandoned_at_its_deadline_for_its_fallback() -> None:
    clock = VirtualClock()
    slow = Scripted(clock, answers(clock, 5.0))
    fast = Scripted(clock, answers(clock, 0.1))
    started = start(clock, [Step("slow", 3, 500), Step("fast", 0, 1000)], {"slow": slow, "fast": fast})
    assert started.model_name == "fast"
    assert slow.started == 1, "a model that ran out of time is not retried"
    assert slow.closed == 1, "the abandoned call is closed (its upstream stops)"
    # The fallback's window starts when it is tried; TTFT counts from arrival: 500 + 100 ms.
    assert started.ttft_ms == pytest.approx(600)
    assert [(a.model, a.outcome) for a in started.attempts] == [("slow", "ttft_exceeded"), ("fast", "ok")]


def test_each_model_has_its_own_window() -> None:
    clock = VirtualClock()
    a = Scripted(clock, answers(clock, 1.0))
    b = Scripted(clock, answers(clock, 1.5))  # inside b's own 2 s, though past a's 0.2 s
    started = start(clock, [Step("a", 0, 200), Step("b", 0, 2000)], {"a": a, "b": b})
    assert started.model_name == "b"
    assert started.ttft_ms == pytest.approx(1700)


def test_no_deadline_waits_as_long_as_the_model_takes() -> None:
    clock = VirtualClock()
    started = start(clock, [Step("a", 0, None)], {"a": Scripted(clock, answers(clock, 120.0))})
    assert started.ttft_ms == pytest.approx(120_000)


def test_retryable_errors_are_retried_with_backoff_then_succeed() -> None:
    clock = VirtualClock()
    flaky = Scripted(clock, fails(True), fails(True), answers(clock, 0.01))
    started = start(clock, [Step("a", 2, None)], {"a": flaky})
    assert flaky.started == 3
    assert len(clock.slept) == 2 and all(0 <= s <= 2.0 for s in clock.slept)
    assert [a.outcome for a in started.attempts] == ["error", "error", "ok"]


def test_a_non_retryable_error_goes_straight_to_the_fallback() -> None:
    clock = VirtualClock()
    broken = Scripted(clock, fails(False))
    backup = Scripted(clock, answers(clock, 0.01))
    started = start(clock, [Step("a", 5, None), Step("b", 0, None)], {"a": broken, "b": backup})
    assert broken.started == 1 and clock.slept == []
    assert started.model_name == "b"


def test_retries_stop_when_the_backoff_would_cross_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "_backoff", lambda attempt: 0.05)  # the jitter is random: fix it
    clock = VirtualClock()
    flaky = Scripted(clock, fails(True))
    with pytest.raises(UpstreamError) as caught:
        start(clock, [Step("a", 50, 1)], {"a": flaky})  # 1 ms: no room for a pause
    assert flaky.started == 1
    assert [a.outcome for a in caught.value.attempts] == ["error"]


def test_every_model_too_slow_is_ttft_exceeded_naming_them() -> None:
    clock = VirtualClock()
    a = Scripted(clock, answers(clock, 9.0))
    b = Scripted(clock, answers(clock, 9.0))
    with pytest.raises(TTFTExceeded) as caught:
        start(clock, [Step("a", 0, 100), Step("b", 0, 100)], {"a": a, "b": b})
    assert "tried: a, b" in caught.value.message
    assert clock.now() == pytest.approx(0.2)
    assert a.closed == b.closed == 1


def test_the_last_error_is_raised_when_every_model_failed() -> None:
    clock = VirtualClock()
    with pytest.raises(ProviderError, match="upstream said no"):
        start(clock, [Step("a", 0, None)], {"a": Scripted(clock, fails(False))})


def test_usage_before_the_first_token_is_not_a_first_token() -> None:
    clock = VirtualClock()

    async def usage_then_slow() -> AsyncIterator[Event]:
        yield UsageReport(3, 0)
        await clock.advance(1.0)
        yield TextDelta(0, "late")

    with pytest.raises(TTFTExceeded):
        start(clock, [Step("a", 0, 500)], {"a": Scripted(clock, usage_then_slow)})


def test_n_choices_fan_out_to_parallel_calls_when_the_provider_has_no_n() -> None:
    clock = VirtualClock()

    async def one() -> AsyncIterator[Event]:
        yield TextDelta(0, "x")
        yield Finish(0, "stop")

    provider = Scripted(clock, one)
    call = ModelCall(messages=CALL.messages, n=3)

    async def collect() -> list[Event]:
        started = await engine.start(
            call, [Step("a", 0, None)], {"a": provider}.__getitem__, received_at=0, clock=clock
        )
        return [e async for e in started.events()]

    events = asyncio.run(collect())
    assert provider.started == 3
    assert sorted(e.index for e in events if isinstance(e, Finish)) == [0, 1, 2]
