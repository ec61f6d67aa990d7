"""The store's errors, and the one way its adapters turn AWS failures into them.

A read or write that AWS refuses (throttling, an outage, a missing table) becomes `StoreError`:
callers handle one type, whatever the backend. A `ValueError` is passed through untouched: it is
the caller's mistake (`InvalidCursor`) or the data's, not the store being unavailable.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class StoreError(Exception):
    """The store refused or failed a write or read."""


class InvalidCursor(ValueError):
    """The cursor was not made by this API (or by a query with other filters)."""


@contextmanager
def store_errors(what: str, error: type[Exception] = StoreError) -> Iterator[None]:
    """Raise `error("{what} failed: {exception type}")` for what fails inside (botocore's
    ClientError, connection errors); StoreError, `error` itself and ValueError pass through."""
    try:
        yield
    except (StoreError, error, ValueError):
        raise
    except Exception as exc:
        raise error(f"{what} failed: {type(exc).__name__}") from exc
