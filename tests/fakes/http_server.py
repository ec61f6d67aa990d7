"""A tiny real HTTP/1.1 server on 127.0.0.1 for upstream fakes, run by its own event loop thread.

Hand-rolled on asyncio streams rather than uvicorn so that a fake controls every byte (chunked
streaming with a flush per chunk, garbage, dropping the connection mid-body), notices a client
disconnect at once, and starts and stops in a few milliseconds. Keep-alive is supported, so tests
can also see whether a client reuses its connections (`connections` counts accepted sockets).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self
from urllib.parse import unquote, urlsplit


class ClientGone(Exception):
    """The client closed the connection while a response was being written."""


class Gate:
    """A latch a test opens from its own thread and fakes wait on from the server loop."""

    def __init__(self) -> None:
        self._open = threading.Event()
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def is_open(self) -> bool:
        return self._open.is_set()

    def open(self) -> None:
        with self._lock:
            self._open.set()
            for loop, event in self._waiters:
                with contextlib.suppress(RuntimeError):  # loop already closed
                    loop.call_soon_threadsafe(event.set)

    def close(self) -> None:
        """Re-arm: later waiters block again until the next `open()`."""
        self._open.clear()

    async def wait(self) -> None:
        event = asyncio.Event()
        key = (asyncio.get_running_loop(), event)
        with self._lock:
            if self._open.is_set():
                return
            self._waiters.add(key)
        try:
            await event.wait()
        finally:
            with self._lock:
                self._waiters.discard(key)


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def path(self) -> str:
        """The URL path, percent-decoded (Bedrock model ids arrive as `anthropic.x-v1%3A0`)."""
        return unquote(urlsplit(self.target).path)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Response:
    """Writes one response. `stream()` sends a chunked body, one flushed chunk per `write()`."""

    writer: asyncio.StreamWriter
    disconnected: asyncio.Event
    started: bool = False
    finished: bool = False
    chunked: bool = False
    keep_alive: bool = True

    async def start(self, status: int, headers: Mapping[str, str] | None = None) -> None:
        """Send the status line and headers of a chunked (streamed) body."""
        self.chunked = True
        await self._head(status, {**(headers or {}), "Transfer-Encoding": "chunked"})

    async def write(self, data: bytes) -> None:
        if not data:
            return
        await self._send(b"%x\r\n%s\r\n" % (len(data), data))

    async def end(self) -> None:
        await self._send(b"0\r\n\r\n")
        self.finished = True

    async def full(self, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        """A complete response with Content-Length."""
        await self._head(status, {**(headers or {}), "Content-Length": str(len(body))})
        await self._send(body)
        self.finished = True

    async def raw(self, data: bytes) -> None:
        """Bytes straight onto the socket, bypassing HTTP framing (for garbage faults)."""
        self.started = True
        await self._send(data)

    def drop(self) -> None:
        """Close the connection now, mid-body: the client sees a truncated response."""
        self.keep_alive = False
        self.writer.transport.abort()

    async def wait_or_disconnect(self, awaitable: Awaitable[Any]) -> None:
        """Wait for `awaitable`, or raise ClientGone as soon as the client leaves."""
        task = asyncio.ensure_future(awaitable)
        gone = asyncio.ensure_future(self.disconnected.wait())
        try:
            await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            if not task.done():
                task.cancel()
        if not task.done() or task.cancelled():
            raise ClientGone
        task.result()

    async def sleep(self, seconds: float) -> None:
        """Sleep, but notice a disconnect during it."""
        if seconds > 0:
            await self.wait_or_disconnect(asyncio.sleep(seconds))
        elif self.disconnected.is_set():
            raise ClientGone

    async def _head(self, status: int, headers: Mapping[str, str]) -> None:
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if not self.keep_alive:
            lines.append("Connection: close")
        self.started = True
        await self._send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    async def _send(self, data: bytes) -> None:
        if self.disconnected.is_set() or self.writer.transport.is_closing():
            raise ClientGone
        self.writer.write(data)
        try:
            await self.writer.drain()
        except (ConnectionError, OSError) as exc:
            self.disconnected.set()
            raise ClientGone from exc


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Error"}

Handler = Callable[[Request, Response], Awaitable[None]]


@dataclass
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    stash: bytearray = field(default_factory=bytearray)


class FakeHTTPServer:
    """Serve `handler` on 127.0.0.1:<ephemeral port> from a daemon thread. Use as a context manager."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0
        self.connections = 0  # sockets accepted so far

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "server not started"
        return self._loop

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        ready = threading.Event()
        loop = asyncio.new_event_loop()
        self._loop = loop

        def run() -> None:
            asyncio.set_event_loop(loop)

            async def serve() -> None:
                self._server = await asyncio.start_server(self._on_connect, sock=sock, backlog=1024)
                ready.set()

            loop.run_until_complete(serve())
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name=f"fake-http-{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(5):
            raise RuntimeError("fake HTTP server did not start")

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or loop.is_closed():
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), loop)
        thread.join(5)

    def __enter__(self) -> FakeHTTPServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve_connection(_Conn(reader, writer))
        except (asyncio.CancelledError, ConnectionError, asyncio.IncompleteReadError, ClientGone):
            pass
        finally:
            self._tasks.discard(task)
            writer.transport.abort()

    async def _serve_connection(self, conn: _Conn) -> None:
        while True:
            request = await _read_request(conn)
            if request is None:
                return
            if request.headers.get("expect", "").lower() == "100-continue":
                conn.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            disconnected = asyncio.Event()
            response = Response(conn.writer, disconnected)
            response.keep_alive = request.headers.get("connection", "").lower() != "close"
            watcher = asyncio.ensure_future(_watch(conn, disconnected))
            try:
                await self._handler(request, response)
            finally:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            if disconnected.is_set() or not response.finished or not response.keep_alive:
                return


async def _watch(conn: _Conn, disconnected: asyncio.Event) -> None:
    """Set `disconnected` when the client closes; keep any early bytes of its next request."""
    try:
        while True:
            data = await conn.reader.read(65536)
            if not data:
                break
            conn.stash += data
    except (ConnectionError, OSError):
        pass
    disconnected.set()


async def _read_request(conn: _Conn) -> Request | None:
    reader = conn.reader
    if conn.stash:  # bytes the watcher read early: put them back in front
        data = bytes(conn.stash)
        conn.stash.clear()
        reader._buffer[:0] = data  # type: ignore[attr-defined]
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            body += await reader.readexactly(size)
            await reader.readexactly(2)
        return Request(method, target, headers, bytes(body))
    length = int(headers.get("content-length", "0") or 0)
    body_bytes = await reader.readexactly(length) if length else b""
    return Request(method, target, headers, body_bytes)


def json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class FakeBase:
    """What both model fakes share: the server, recorded requests, signals and the gate."""

    def __init__(self) -> None:
        self.server = FakeHTTPServer(self._dispatch)
        self.requests: list[Request] = []
        self.gate = Gate()
        #: Set when a client leaves before its response finished (the upstream saw the cancel).
        self.disconnected = threading.Event()
        self.disconnects = 0
        #: Set once any request arrived / any first token was written.
        self.request_received = threading.Event()
        self.first_token_sent = threading.Event()
        self.completed = 0  # responses that finished normally

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.gate.open()
        self.server.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def connections(self) -> int:
        return self.server.connections

    # --- controls --------------------------------------------------------------------------------

    def release(self) -> None:
        """Let every stream held at its gate go on (and later ones pass straight through)."""
        self.gate.open()

    def hold(self) -> None:
        """Re-arm the gate after a `release()`."""
        self.gate.close()

    def reset(self) -> None:
        """Forget requests and signals, and re-arm the gate (for a fake shared across tests)."""
        self.requests.clear()
        self.gate.close()
        self.disconnected.clear()
        self.request_received.clear()
        self.first_token_sent.clear()
        self.disconnects = 0
        self.completed = 0

    @property
    def bodies(self) -> list[Any]:
        """Received request bodies, parsed as JSON."""
        return [r.json() for r in self.requests]

    # --- plumbing --------------------------------------------------------------------------------

    async def _dispatch(self, request: Request, response: Response) -> None:
        self.requests.append(request)
        self.request_received.set()
        try:
            await self.handle(request, response)
            if response.finished:
                self.completed += 1
        except ClientGone:
            self._saw_disconnect()
            raise
        if response.disconnected.is_set() and not response.finished:
            self._saw_disconnect()

    def _saw_disconnect(self) -> None:
        self.disconnects += 1
        self.disconnected.set()

    async def handle(self, request: Request, response: Response) -> None:
        raise NotImplementedError

    async def hold_at_gate(self, response: Response) -> None:
        """Block this stream until the test calls `release()`, noticing a disconnect meanwhile."""
        await response.wait_or_disconnect(self.gate.wait())

    async def stall(self, response: Response) -> None:
        """Send nothing more until the client leaves (or the server stops)."""
        await response.wait_or_disconnect(asyncio.Event().wait())


def word_pieces(text: str, chunks: list[str] | None) -> list[str]:
    """`chunks` when given, else `text` split into words (leading spaces kept), one per chunk."""
    if chunks is not None:
        return list(chunks)
    pieces: list[str] = re.findall(r"\s*\S+", text)
    tail = text[sum(len(p) for p in pieces) :]
    if tail:
        pieces = [*pieces[:-1], pieces[-1] + tail] if pieces else [tail]
    return pieces
