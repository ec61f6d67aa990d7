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
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cachetools import TTLCache

from handler.aws import LazyClient
from handler.config.models import NAME_RE, Quotas
from handler.store.dynamo import DynamoClient, Item, conditional, query_items, time_key
from handler.store.errors import store_errors

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
    quotas: Quotas | None = None  # the key's own limits (completions/quotas.py); None: unlimited

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


def _item_key(key_id: str) -> Item:
    return {"pk": {"S": f"APIKEY#{key_id}"}, "sk": {"S": "APIKEY"}}


class DynamoKeyStore:
    def __init__(self, table_name: str, client: DynamoClient | None = None) -> None:
        self._table = table_name
        self._client = client

    client = LazyClient("dynamodb")

    def create(
        self, projects: Iterable[str], name: str | None = None, quotas: Quotas | None = None
    ) -> tuple[ApiKey, str]:
        """A new key for `projects`. The key itself is returned here once and stored nowhere."""
        scope = tuple(dict.fromkeys(projects))
        if not scope:
            raise ValueError("a key needs at least one project")
        for project in scope:
            if not _PROJECT.match(project):
                raise ValueError(f"{project!r} is not a valid project name")
        key_id, key = new_key()
        quotas = quotas if quotas is not None and _quota_map(quotas) else None
        record = ApiKey(
            key_id=key_id,
            projects=scope,
            created=time.time(),
            key_hash=hash_key(key),
            name=name,
            quotas=quotas,
        )
        item: Item = {
            **_item_key(key_id),
            "gsi2pk": {"S": _LIST_PK},
            "gsi2sk": {"S": time_key(record.created, key_id)},
            "type": {"S": "api_key"},
            "key_hash": {"S": record.key_hash},
            "projects": {"L": [{"S": p} for p in scope]},
            "created": {"N": repr(record.created)},
        }
        if name:
            item["name"] = {"S": name}
        if quotas is not None:
            item["quotas"] = {"M": _quota_map(quotas)}
        with store_errors("put_item on the key table", KeyStoreError):
            self.client.put_item(
                TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(pk)"
            )
        return record, key

    def get(self, key_id: str) -> ApiKey | None:
        with store_errors("get_item on the key table", KeyStoreError):
            response = self.client.get_item(TableName=self._table, Key=_item_key(key_id), ConsistentRead=True)
        item = response.get("Item")
        return _from_item(item) if item else None

    def list(self) -> list[ApiKey]:
        """Every key, oldest first (revoked ones included)."""
        with store_errors("query on the key table", KeyStoreError):
            items = query_items(
                self.client,
                TableName=self._table,
                IndexName="GSI2",
                KeyConditionExpression="gsi2pk = :pk",
                ExpressionAttributeValues={":pk": {"S": _LIST_PK}},
            )
            return [_from_item(item) for item in items]

    def revoke(self, key_id: str) -> ApiKey:
        """Mark a key revoked (kept, for the audit trail). Revoking twice keeps the first time."""
        with store_errors("revoking the key", KeyStoreError):
            response = conditional(
                lambda: self.client.update_item(
                    TableName=self._table,
                    Key=_item_key(key_id),
                    UpdateExpression="SET revoked_at = if_not_exists(revoked_at, :now)",
                    ConditionExpression="attribute_exists(pk)",
                    ExpressionAttributeValues={":now": {"N": repr(time.time())}},
                    ReturnValues="ALL_NEW",
                )
            )
        if response is None:
            raise UnknownKey(key_id)
        return _from_item(response["Attributes"])

    def set_quotas(self, key_id: str, quotas: Quotas) -> ApiKey:
        """Replace a key's limits (an empty `Quotas` removes them). Instances see it within the cache's TTL."""
        values = _quota_map(quotas)
        update = "SET quotas = :quotas" if values else "REMOVE quotas"
        params: dict[str, object] = {}
        if values:
            params["ExpressionAttributeValues"] = {":quotas": {"M": values}}
        with store_errors("updating the key", KeyStoreError):
            response = conditional(
                lambda: self.client.update_item(
                    TableName=self._table,
                    Key=_item_key(key_id),
                    UpdateExpression=update,
                    ConditionExpression="attribute_exists(pk)",
                    ReturnValues="ALL_NEW",
                    **params,
                )
            )
        if response is None:
            raise UnknownKey(key_id)
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


def _quota_map(quotas: Quotas) -> Item:
    return {k: {"N": repr(v)} for k, v in quotas.model_dump(exclude_none=True).items()}


def _quotas_of(item: Item) -> Quotas | None:
    stored = item.get("quotas", {}).get("M")
    if not stored:
        return None
    values = {k: float(v["N"]) for k, v in stored.items()}
    return Quotas.model_validate({k: int(v) if k != "usd_per_month" else v for k, v in values.items()})


def _from_item(item: Item) -> ApiKey:
    revoked = item.get("revoked_at")
    name = item.get("name")
    return ApiKey(
        key_id=item["pk"]["S"].removeprefix("APIKEY#"),
        projects=tuple(p["S"] for p in item.get("projects", {}).get("L", [])),
        created=float(item["created"]["N"]),
        key_hash=item["key_hash"]["S"],
        name=name["S"] if name else None,
        revoked_at=float(revoked["N"]) if revoked else None,
        quotas=_quotas_of(item),
    )


MISS = object()  # `CachedKeys.cached` found nothing fresh


class CachedKeys:
    """`verify` with a short-lived in-memory cache of its answers (positive and negative).

    Entries live `ttl_s` seconds, which bounds how long a revoked key keeps working on an instance
    that saw it just before the revocation. The cache is keyed by the key's hash (the key itself is
    kept nowhere) and bounded in size; `clock` is injectable for tests.
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
        self._entries: TTLCache[str, ApiKey | None] = TTLCache(maxsize=max_entries, ttl=ttl_s, timer=clock)
        self._lock = threading.Lock()  # TTLCache is not thread-safe; requests verify from threads

    def cached(self, key: str) -> ApiKey | object | None:
        """The cached answer for `key`, or `MISS` (no table read)."""
        with self._lock:
            return self._entries.get(hash_key(key), MISS)

    def load(self, key: str) -> ApiKey | None:
        """Verify against the table and remember the answer. Errors are not cached."""
        result = self._verify(key)
        with self._lock:
            self._entries[hash_key(key)] = result
        return result

    def verify(self, key: str) -> ApiKey | None:
        hit = self.cached(key)
        return self.load(key) if hit is MISS else hit  # type: ignore[return-value]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
