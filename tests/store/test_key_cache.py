"""CachedKeys: answers, good and bad, kept `ttl_s` seconds on the injected clock; errors never."""

from __future__ import annotations

import pytest

from handler.store.keys import MISS, ApiKey, CachedKeys, KeyStoreError

pytestmark = pytest.mark.unit

KEY = ApiKey(key_id="0123456789abcdef", projects=("demo",), created=1.0, key_hash="h")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Table:
    def __init__(self) -> None:
        self.answers: dict[str, ApiKey | None] = {"good": KEY}
        self.reads: list[str] = []
        self.down = False

    def verify(self, key: str) -> ApiKey | None:
        self.reads.append(key)
        if self.down:
            raise KeyStoreError("get_item on the key table failed: EndpointConnectionError")
        return self.answers.get(key)


def test_answers_are_kept_for_the_ttl_then_read_again() -> None:
    table, clock = Table(), Clock()
    keys = CachedKeys(table.verify, ttl_s=30, clock=clock)
    assert keys.cached("good") is MISS
    assert keys.verify("good") is KEY
    clock.now += 29.99
    assert keys.cached("good") is KEY and keys.verify("good") is KEY
    assert table.reads == ["good"]
    clock.now = 1030.0  # exactly the TTL: expired
    assert keys.cached("good") is MISS
    assert keys.verify("good") is KEY and table.reads == ["good", "good"]


def test_unknown_keys_are_cached_too() -> None:
    table, clock = Table(), Clock()
    keys = CachedKeys(table.verify, ttl_s=30, clock=clock)
    assert keys.verify("bad") is None
    assert keys.cached("bad") is None  # a cached "no", not a miss
    assert keys.verify("bad") is None and table.reads == ["bad"]


def test_errors_are_not_cached() -> None:
    table = Table()
    keys = CachedKeys(table.verify, ttl_s=30, clock=Clock())
    table.down = True
    with pytest.raises(KeyStoreError):
        keys.load("good")
    assert keys.cached("good") is MISS
    table.down = False
    assert keys.verify("good") is KEY


def test_the_cache_is_bounded_and_can_be_cleared() -> None:
    table, clock = Table(), Clock()
    keys = CachedKeys(table.verify, ttl_s=30, max_entries=3, clock=clock)
    for n in range(5):
        keys.verify(f"k{n}")
    assert sum(keys.cached(f"k{n}") is not MISS for n in range(5)) == 3
    assert keys.cached("k4") is None  # the newest stays
    keys.clear()
    assert all(keys.cached(f"k{n}") is MISS for n in range(5))


def test_a_zero_ttl_caches_nothing() -> None:
    table = Table()
    keys = CachedKeys(table.verify, ttl_s=0, clock=Clock())
    keys.verify("good")
    keys.verify("good")
    assert table.reads == ["good", "good"]
