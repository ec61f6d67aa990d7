"""Who is calling, and which projects they may touch.

Every route but `/health` depends on `authenticate` (set on the routers in `api/app.py`), which
reads `Authorization: Bearer <key>` and puts a `Principal` on `request.state`. Routes declare
`CallerDep` and hand the `Caller` (the key's projects) to their service, which answers a project
outside the key's scope, or a record of one, exactly like one that does not exist (the same 404).

`AUTH_MODE` decides which keys are accepted, and auth is never off:
- `keys` (deployments): API keys from the table (`python -m gatewayctl keys create ...`);
- `dev` (`make dev`, tests): those, and also `DEV_API_KEY` (default `sk-local-dev`) for every project;
- anything else: every request is refused (a typo must not open the gateway).
"""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from handler.completions.caller import Caller
from handler.config.models import Quotas
from handler.errors import GatewayError, Unauthorized
from handler.observability import logger
from handler.settings import get_settings

if TYPE_CHECKING:
    from handler.store.keys import CachedKeys

AUTH_MODES = ("keys", "dev")


class AuthMisconfigured(GatewayError):
    """AUTH_MODE is not a mode we know: refuse everything rather than guess."""

    status = 500
    type = "internal_error"
    code = "auth_misconfigured"


class AuthUnavailable(GatewayError):
    """The key table could not be read: the caller may retry; nobody gets in meanwhile."""

    status = 503
    type = "api_error"
    code = "auth_unavailable"


@dataclass(frozen=True)
class Principal:
    key_id: str
    projects: frozenset[str] | None  # None: every project (the dev key only)
    quotas: Quotas | None = None  # the key's limits (None: unlimited)

    def may_access(self, project: str) -> bool:
        return self.projects is None or project in self.projects


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'", code="missing_api_key")
    scheme, _, key = header.strip().partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise Unauthorized("malformed Authorization header: expected 'Bearer <key>'", code="invalid_api_key")
    return key


def _keys(request: Request) -> CachedKeys:
    keys: CachedKeys | None = getattr(request.app.state, "keys", None)  # a test's own
    if keys is None:
        from handler.api.deps import services_of

        keys = services_of(request).keys
    return keys


async def authenticate(request: Request) -> Principal:
    """App-level dependency: sets `request.state.principal`, or raises 401 / 500 / 503."""
    settings = get_settings()
    mode = settings.auth_mode.strip().lower()
    if mode not in AUTH_MODES:
        logger.error(
            "unknown AUTH_MODE: refusing every request", extra={"auth_mode": settings.auth_mode[:32]}
        )
        raise AuthMisconfigured("authentication is misconfigured on this gateway")
    key = _bearer(request)
    principal: Principal
    if (
        mode == "dev"
        and settings.dev_api_key
        and hmac.compare_digest(key.encode(), settings.dev_api_key.encode())
    ):
        principal = Principal(key_id="dev", projects=None)
    elif mode == "dev" and (project := _local_project_key(key, settings.local_project_keys)) is not None:
        principal = Principal(key_id=f"local-{project}", projects=frozenset({project}))
    else:
        from handler.store.keys import ApiKey, KeyStoreError

        keys = _keys(request)
        hit = keys.cached(key)  # a warm instance answers from memory
        found = hit if hit is None or isinstance(hit, ApiKey) else None
        if hit is not None and not isinstance(hit, ApiKey):
            try:
                found = await asyncio.to_thread(keys.load, key)
            except KeyStoreError as exc:
                logger.error("API key lookup failed", extra={"error": str(exc)})
                raise AuthUnavailable("could not verify the API key right now; retry shortly") from None
        if found is None:
            raise Unauthorized("invalid or revoked API key")
        principal = Principal(key_id=found.key_id, projects=frozenset(found.projects), quotas=found.quotas)
    request.state.principal = principal
    return principal


LOCAL_PROJECT_KEY = "sk-local-"


def _local_project_key(key: str, allowed: str) -> str | None:
    """`sk-local-<project>` (dev mode only: `make dev`, tests): a key scoped to that one project, so
    that scoping can be tried locally; only for the projects `LOCAL_PROJECT_KEYS` names."""
    if not key.startswith(LOCAL_PROJECT_KEY):
        return None
    project = key[len(LOCAL_PROJECT_KEY) :]
    return project if project in {p.strip() for p in allowed.split(",") if p.strip()} else None


def caller_of(request: Request) -> Caller:
    """Who is asking, for the services: the key's projects (Unauthorized if nobody is known)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:  # a route outside `authenticate`: refuse rather than let it through
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'", code="missing_api_key")
    return Caller(principal.projects, key_id=principal.key_id, key_quotas=principal.quotas)


async def current_caller(principal: Annotated[Principal, Depends(authenticate)]) -> Caller:
    """Who is asking, as a route hands it to its service. It depends on `authenticate` itself (which
    FastAPI runs once per request however often it is named), so a route that declares `CallerDep`
    cannot be reached without a verified key, whatever router it is mounted on."""
    return Caller(principal.projects, key_id=principal.key_id, key_quotas=principal.quotas)


CallerDep = Annotated[Caller, Depends(current_caller)]
