"""The real app under a real uvicorn on 127.0.0.1, in a thread: what streaming tests talk to.

    with serve_app(create_app()) as url:
        httpx.post(f"{url}/api/v1/chat/completions", ...)

httpx's ASGITransport and Starlette's TestClient buffer a response before the test sees it, so
anything about *when* bytes arrive (first token, disconnects) needs a socket. The server runs its
own event loop in a daemon thread; moto's `mock_aws` patches botocore process-wide, so the app in
that thread sees the same emulated AWS as the test.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


class _Server(uvicorn.Server):
    """uvicorn.Server that says when it listens (no polling) and never touches signal handlers."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


@contextmanager
def serve_app(app: Any, *, graceful_s: int = 2, start_timeout_s: float = 10.0) -> Iterator[str]:
    """Serve `app` on an ephemeral port; yield its base URL (`http://127.0.0.1:<port>`).

    On exit the server stops; responses still streaming get `graceful_s` seconds to finish, then
    their tasks are cancelled (a test that leaves a stream open does not hang the suite).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        loop="asyncio",
        http="h11",
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=graceful_s,
    )
    server = _Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn-{port}", daemon=True
    )
    thread.start()
    try:
        waited = 0.0
        while not server.ready.wait(0.05):  # a failed startup ends the thread: say so at once
            waited += 0.05
            if not thread.is_alive() or waited > start_timeout_s:
                raise RuntimeError("uvicorn did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(graceful_s + 5)
        if thread.is_alive():
            server.force_exit = True
            thread.join(5)
        sock.close()
