"""DynamoDB plumbing shared by the store's adapters and the batch table, written once.

- `write_items` / `get_items`: BatchWriteItem and BatchGetItem in chunks of the API's size, resending
  what DynamoDB leaves unprocessed with bounded, jittered backoff (`resend`, `Backoff`); past the
  bound, `StoreError`. DynamoDB returns unprocessed items under load instead of failing the call,
  so a write that ignored them would lose data silently.
- `query_items` / `query_pages`: a Query over every page, through botocore's paginator.
- `conditional`: a write whose ConditionExpression may fail, as an ordinary outcome (None).
- `time_key`: the sort-key prefix that orders items by time.

Low-level client calls with attribute-value maps (`Item`), like the adapters that use them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from handler.store.errors import StoreError

#: An item (or key) as the low-level client speaks it: `{"pk": {"S": "..."}, "n": {"N": "1"}}`.
Item = dict[str, Any]
#: A page of a response (`Items`, `LastEvaluatedKey`, ...), or a request's `RequestItems`.
Response = dict[str, Any]

WRITE_BATCH = 25  # BatchWriteItem's limit
GET_BATCH = 100  # BatchGetItem's limit
CONDITION_FAILED = "ConditionalCheckFailedException"

R = TypeVar("R")
P = TypeVar("P")


class Paginator(Protocol):
    def paginate(self, **params: object) -> Iterable[Response]: ...


class BatchClient(Protocol):
    """What `write_items` and `get_items` call (tests pass fakes that leave items unprocessed)."""

    def batch_write_item(self, *, RequestItems: dict[str, list[Item]]) -> Response: ...

    def batch_get_item(self, *, RequestItems: dict[str, dict[str, Any]]) -> Response: ...


class QueryClient(Protocol):
    """What `query_items` and `query_pages` call."""

    def get_paginator(self, operation_name: str) -> Paginator: ...


class DynamoClient(BatchClient, QueryClient, Protocol):
    """The part of botocore's (untyped) DynamoDB client the adapters use."""

    def get_item(self, **params: object) -> Response: ...

    def put_item(self, **params: object) -> Response: ...

    def update_item(self, **params: object) -> Response: ...

    def transact_write_items(self, **params: object) -> Response: ...


@dataclass(frozen=True)
class Backoff:
    """`attempts` calls at most; before each resend a random pause of up to `base_s * 2**n`
    (capped at `cap_s`): full jitter, so callers throttled together do not retry together."""

    attempts: int = 8
    base_s: float = 0.05
    cap_s: float = 1.0
    sleep: Callable[[float], None] = time.sleep

    def pause(self, retry: int) -> None:
        self.sleep(random.uniform(0, min(self.cap_s, self.base_s * 2**retry)))


BACKOFF = Backoff()


def resend(send: Callable[[P], P], request: P, *, backoff: Backoff = BACKOFF) -> P:
    """Call `send` with `request`, then with what it returned as left undone, until nothing is or
    `backoff.attempts` calls were made. Returns what is still undone (empty when all went)."""
    pending = request
    for attempt in range(backoff.attempts):
        if attempt:
            backoff.pause(attempt - 1)
        pending = send(pending)
        if not pending:
            break
    return pending


def _all_processed(
    send: Callable[[Response], Response], request: Response, what: str, backoff: Backoff
) -> None:
    if resend(send, request, backoff=backoff):
        raise StoreError(f"{what}: DynamoDB left items unprocessed after {backoff.attempts} attempts")


def write_items(
    client: BatchClient, table: str, requests: Sequence[Item], *, what: str, backoff: Backoff = BACKOFF
) -> None:
    """Every `{"PutRequest": ...}` / `{"DeleteRequest": ...}`, 25 per call, in order of the chunks."""

    def send(pending: Response) -> Response:
        left: Response = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        return left

    for start in range(0, len(requests), WRITE_BATCH):
        _all_processed(send, {table: list(requests[start : start + WRITE_BATCH])}, what, backoff)


def get_items(
    client: BatchClient,
    table: str,
    keys: Sequence[Item],
    *,
    what: str,
    projection: str | None = None,
    names: Mapping[str, str] | None = None,
    consistent: bool = False,
    backoff: Backoff = BACKOFF,
) -> list[Item]:
    """The items of `keys` that exist, 100 keys per call, in no particular order."""
    found: list[Item] = []

    def send(pending: Response) -> Response:
        response = client.batch_get_item(RequestItems=pending)
        found.extend(response.get("Responses", {}).get(table, []))
        left: Response = response.get("UnprocessedKeys") or {}
        return left

    options: dict[str, Any] = {}
    if projection is not None:
        options["ProjectionExpression"] = projection
    if names:
        options["ExpressionAttributeNames"] = dict(names)
    if consistent:
        options["ConsistentRead"] = True
    for start in range(0, len(keys), GET_BATCH):
        chunk = list(keys[start : start + GET_BATCH])
        _all_processed(send, {table: {"Keys": chunk, **options}}, what, backoff)
    return found


def query_pages(client: QueryClient, **params: object) -> Iterator[Response]:
    """Each page of a Query, read lazily (`ExclusiveStartKey` in `params` starts after that key)."""
    yield from client.get_paginator("query").paginate(**params)


def query_items(client: QueryClient, **params: object) -> Iterator[Item]:
    """Every item of a Query, across pages, lazily."""
    for page in query_pages(client, **params):
        yield from page.get("Items", [])


def condition_failed(exc: BaseException) -> bool:
    """True when DynamoDB refused a write because its ConditionExpression did not hold."""
    response = getattr(exc, "response", None) or {}
    return bool(response.get("Error", {}).get("Code") == CONDITION_FAILED)


def conditional(call: Callable[[], R]) -> R | None:
    """`call()`'s result, or None when its condition did not hold; any other error is raised."""
    try:
        return call()
    except Exception as exc:
        if condition_failed(exc):
            return None
        raise


def decimal_number(value: float) -> Item:
    """A float as a DynamoDB number in plain decimal notation (`9e-05` is valid DynamoDB, but fixed
    point keeps every reader, moto's `ADD` included, on the same exact decimal), to 10 places."""
    text = f"{value:.10f}".rstrip("0")
    return {"N": text + "0" if text.endswith(".") else text}


def time_key(created: float, *parts: str) -> str:
    """`{microseconds, 17 digits}#{part}#...`: sorts as text in the order of `created`."""
    return "#".join((f"{int(created * 1_000_000):017d}", *parts))
