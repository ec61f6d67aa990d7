"""API keys: created and revoked by an operator's command, verified on every request.

```
api key  pk=APIKEY#{key_id}  sk=APIKEY  gsi2pk=APIKEYS  gsi2sk={created_us}#{key_id}
```
A key reads `sk-gw-{key_id}-{secret}`: the id (not secret) finds the item with one GetItem, and
only the key's SHA-256 is stored, compared in constant time. A key is 256 random bits, so a plain
hash is enough: there is nothing to brute-force that a slow hash would protect.

Verification results, good or bad, are cached in memory for `ttl_s` seconds (`API_KEY_CACHE_S`):
a warm request does not read DynamoDB, and a revoked key stops working on every instance within
that time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from handler.aws import LazyClient
from handler.config.models import NAME_RE

PREFIX = "sk-gw-"
_KEY = re.compile(r"^sk-gw-([0-9a-f]{16})-([A-Za-z0-9_-]{43})$")
_PROJECT = re.compile(NAME_RE)
_LIST_PK = "APIKEYS"


class KeyStoreError(Exception):
    """The key table could not be read or written."""


class UnknownKey(KeyError):
    """No key has this id."""


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    projects: tuple[str, ...]
    created: float
    key_hash: str
    name: str | None = None
    revoked_at: float | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def hint(self) -> str:
        """How a key is shown after creation: enough to recognise it, useless to use it."""
        return f"{PREFIX}{self.key_id}-…"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_id_of(key: str) -> str | None:
    """The id inside a well-formed key, else None (and no table read for it)."""
    match = _KEY.match(key)
    return match.group(1) if match else None


def new_key() -> tuple[str, str]:
    """(key_id, key): 64 random bits of id, 256 of secret."""
    key_id = secrets.token_hex(8)
    return key_id, f"{PREFIX}{key_id}-{secrets.token_urlsafe(32)}"


def _item_key(key_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"APIKEY#{key_id}"}, "sk": {"S": "APIKEY"}}


class DynamoKeyStore:
    def __init__(self, table_name: str, client: Any = None) -> None:
        self._table = table_name
        self._client = client

    client = LazyClient("dynamodb")

    def create(self, projects: Iterable[str], name: str | None = None) -> tuple[ApiKey, str]:
        """A new key for `projects`. The key itself is returned here once and stored nowhere."""
        scope = tuple(dict.fromkeys(projects))
        if not scope:
            raise ValueError("a key needs at least one project")
        for project in scope:
            if not _PROJECT.match(project):
                raise ValueError(f"{project!r} is not a valid project name")
        key_id, key = new_key()
        record = ApiKey(key_id=key_id, projects=scope, created=time.time(), key_hash=hash_key(key), name=name)
        item: dict[str, Any] = {
            **_item_key(key_id),
            "gsi2pk": {"S": _LIST_PK},
            "gsi2sk": {"S": f"{int(record.created * 1_000_000):017d}#{key_id}"},
            "type": {"S": "api_key"},
            "key_hash": {"S": record.key_hash},
            "projects": {"L": [{"S": p} for p in scope]},
            "created": {"N": repr(record.created)},
        }
        if name:
            item["name"] = {"S": name}
        self._call(
            "put_item",
            TableName=self._table,
            Item=item,
            ConditionExpression="attribute_not_exists(pk)",
        )
        return record, key

    def get(self, key_id: str) -> ApiKey | None:
        response = self._call("get_item", TableName=self._table, Key=_item_key(key_id), ConsistentRead=True)
        item = response.get("Item")
        return _from_item(item) if item else None

    def list(self) -> list[ApiKey]:
        """Every key, oldest first (revoked ones included)."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "GSI2",
            "KeyConditionExpression": "gsi2pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": _LIST_PK}},
        }
        keys: list[ApiKey] = []
        while True:
            response = self._call("query", **kwargs)
            keys.extend(_from_item(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return keys
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def revoke(self, key_id: str) -> ApiKey:
        """Mark a key revoked (kept, for the audit trail). Revoking twice keeps the first time."""
        from botocore.exceptions import ClientError

        try:
            response = self.client.update_item(
                TableName=self._table,
                Key=_item_key(key_id),
                UpdateExpression="SET revoked_at = if_not_exists(revoked_at, :now)",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":now": {"N": repr(time.time())}},
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise UnknownKey(key_id) from None
            raise KeyStoreError(f"revoking the key failed: {type(exc).__name__}") from exc
        return _from_item(response["Attributes"])

    def verify(self, key: str) -> ApiKey | None:
        """The active key `key` is, else None. Raises KeyStoreError when the table can't be read."""
        key_id = key_id_of(key)
        if key_id is None:
            return None
        stored = self.get(key_id)
        if stored is None or not hmac.compare_digest(stored.key_hash, hash_key(key)):
            return None
        return stored if stored.active else None

    def _call(self, operation: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, operation)(**kwargs)
        except Exception as exc:  # botocore ClientError, connection errors
            raise KeyStoreError(f"{operation} on the key table failed: {type(exc).__name__}") from exc


def _from_item(item: dict[str, Any]) -> ApiKey:
    revoked = item.get("revoked_at")
    name = item.get("name")
    return ApiKey(
        key_id=item["pk"]["S"].removeprefix("APIKEY#"),
        projects=tuple(p["S"] for p in item.get("projects", {}).get("L", [])),
        created=float(item["created"]["N"]),
        key_hash=item["key_hash"]["S"],
        name=name["S"] if name else None,
        revoked_at=float(revoked["N"]) if revoked else None,
    )


MISS = object()  # `CachedKeys.cached` found nothing fresh


class CachedKeys:
    """`verify` with a short-lived in-memory cache of its answers (positive and negative).

    Entries live `ttl_s` seconds, which bounds how long a revoked key keeps working on an instance
    that saw it just before the revocation. The cache is keyed by the key's hash and bounded in size.
    """

    def __init__(
        self,
        verify: Callable[[str], ApiKey | None],
        ttl_s: float,
        *,
        max_entries: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._verify = verify
        self.ttl_s = ttl_s
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, ApiKey | None]] = OrderedDict()
        self._lock = threading.Lock()

    def cached(self, key: str) -> ApiKey | object | None:
        """The cached answer for `key`, or `MISS` (no table read)."""
        digest = hash_key(key)
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return MISS
            if entry[0] <= self._clock():
                del self._entries[digest]
                return MISS
            return entry[1]

    def load(self, key: str) -> ApiKey | None:
        """Verify against the table and remember the answer. Errors are not cached."""
        result = self._verify(key)
        with self._lock:
            self._entries[hash_key(key)] = (self._clock() + self.ttl_s, result)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return result

    def verify(self, key: str) -> ApiKey | None:
        hit = self.cached(key)
        return self.load(key) if hit is MISS else hit  # type: ignore[return-value]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
