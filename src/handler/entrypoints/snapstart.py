"""SnapStart runtime hooks: what restored execution environments must not share.

With SnapStart on (template.yaml, parameter `SnapStart`), Lambda initialises a published version once,
snapshots the initialised environment and resumes every new environment from that snapshot
(https://docs.aws.amazon.com/lambda/latest/dg/snapstart.html). Whatever init left in memory is then
the same in all of them: `random`'s state (campaign arms without a subject, retry jitter), and any
pooled connection, client or resolved credentials (short-lived, and the snapshot may be restored
hours later). Today init builds none of those (clients and services are built on first use, and
Lambda runs no invocation before the snapshot), but that is one warm-up away from changing, so after
a restore this module reseeds `random` and forgets them all: they are built again on first use,
with fresh connections and credentials.

The hooks come from `snapshot_restore_py`, which Lambda's Python runtimes include; Lambda runs only
hooks registered by modules the handler's module imports
(https://docs.aws.amazon.com/lambda/latest/dg/snapstart-runtime-hooks-python.html). So each
in-process entrypoint calls `register()` at import; elsewhere (tests, uvicorn, local tools) the
library is absent and `register()` does nothing. ChatFunction's uvicorn runs under the Web Adapter,
which replaces the runtime client, so its hooks would never run: it has no SnapStart (template.yaml).
"""

from __future__ import annotations

import random
import sys
from typing import Any

_registered = False


def after_restore(*apps: Any) -> None:
    """Reseed `random`; forget pooled httpx clients, AWS clients and their credentials, and the
    services holding them. Only modules already loaded are touched: importing one just to reset it
    would cost restore time for nothing."""
    random.seed()  # from os.urandom, which differs in each restored environment
    http_client = sys.modules.get("handler.providers.http_client")
    if http_client is not None:
        http_client.forget_clients()
    wiring = sys.modules.get("handler.wiring")
    if wiring is not None:
        wiring.reset()  # the services: the config source's SSM provider and the stores hold clients
    aws = sys.modules.get("handler.aws")
    if aws is not None:
        aws.reset_clients()
        aws.forget_credentials()
    for app in apps:  # an app that served a request keeps the services it built (api/deps.py)
        app.state.services = None


def register(*apps: Any) -> bool:
    """Register the hooks when running on Lambda (`snapshot_restore_py` importable); once per process.
    `apps`: FastAPI apps whose built services must be forgotten too."""
    global _registered
    if _registered:
        return True
    try:
        from snapshot_restore_py import register_after_restore  # type: ignore[import-not-found]
    except ImportError:
        return False
    register_after_restore(after_restore, *apps)
    _registered = True
    return True
