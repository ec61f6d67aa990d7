"""Drive a provider's stream from a synchronous test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from handler.providers.base import Event, ModelCall, Provider


async def collect(stream: AsyncIterator[Event]) -> list[Event]:
    return [event async for event in stream]


def run(p: Provider, call: ModelCall) -> list[Event]:
    """Every event of one call."""
    return asyncio.run(collect(p.stream(call)))


def fails(p: Provider, call: ModelCall) -> tuple[list[Event], BaseException]:
    """The events before the failure, and the failure."""
    events: list[Event] = []

    async def go() -> BaseException:
        try:
            async for event in p.stream(call):
                events.append(event)
        except Exception as exc:
            return exc
        raise AssertionError("the stream did not fail")

    return events, asyncio.run(go())
