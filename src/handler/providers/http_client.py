"""One shared httpx.AsyncClient per event loop: connections are pooled across requests.

Mangum reuses one loop for every invocation of a warm function, and uvicorn runs one loop, so in
practice this is one client per process; tests that start new loops get their own.
"""

from __future__ import annotations

import asyncio
import weakref

import httpx

from handler.settings import get_settings

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)


def shared_client() -> httpx.AsyncClient:
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        settings = get_settings()
        client = httpx.AsyncClient(
            timeout=httpx.Timeout(
                settings.upstream_read_timeout_s, connect=settings.upstream_connect_timeout_s
            ),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            follow_redirects=False,
        )
        _clients[loop] = client
    return client


def forget_clients() -> None:
    """Drop every pooled client without closing it (a SnapStart restore: its connections belong to
    the snapshot, not to this environment). The next request builds a new one."""
    _clients.clear()
