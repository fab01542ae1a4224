"""Raw-socket HTTP servers for the transport's wire tests: each connection is handed to a test's
handler as bytes in and bytes out, so a reply can break HTTP anywhere a real server might.

A :class:`WireServer` counts the connections it accepted, how many were open at once, and
which ones the client has closed (EOF seen at the server), and keeps every request it read.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType

import anyio

Handler = Callable[["Conn"], Awaitable[None]]
MAX_REQUEST_HEAD = 256 * 1024


@dataclass
class Request:
    """One request as it arrived: the request line, the header lines in order, the body."""

    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes
    head: bytes

    def header(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


@dataclass
class Conn:
    """One accepted connection (``index`` counts from 0 in accept order)."""

    index: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    received: bytearray = field(default_factory=bytearray)
    closed_by_client: asyncio.Event = field(default_factory=asyncio.Event)
    requests: list[Request] = field(default_factory=list)

    async def read_request(self) -> Request | None:
        """The next request, or ``None`` once the client closed the connection."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            self.received += exc.partial
            self.closed_by_client.set()
            return None
        except (ConnectionError, asyncio.LimitOverrunError):
            self.closed_by_client.set()
            return None
        self.received += head
        request_line, *lines = head[:-4].decode("latin-1").split("\r\n")
        method, target, version = request_line.split(" ", 2)
        headers = [(k.strip(), v.strip()) for k, v in (line.split(":", 1) for line in lines)]
        length = sum(int(v) for k, v in headers if k.lower() == "content-length")
        body = await self.reader.readexactly(length) if length else b""
        self.received += body
        request = Request(method, target, version, headers, body, head)
        self.requests.append(request)
        return request

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def trickle(self, data: bytes, *, piece: int = 1, pause_s: float = 0.0) -> None:
        """``data`` in writes of ``piece`` bytes, ``pause_s`` apart (each drained)."""
        for start in range(0, len(data), piece):
            await self.send(data[start : start + piece])
            await asyncio.sleep(pause_s)

    async def until_client_closes(self) -> None:
        """Read (and keep) whatever comes until the client closes the connection."""
        with contextlib.suppress(ConnectionError):
            while chunk := await self.reader.read(65536):
                self.received += chunk
        self.closed_by_client.set()


class WireServer:
    """``async with WireServer(handler) as server``: a server on 127.0.0.1 (a random port)
    running ``handler`` for each connection; the connection is closed when it returns."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.conns: list[Conn] = []
        self.open_now = 0
        self.max_open = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    port = 0  # set once listening

    def url(self, path: str = "/v1/x") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def accepted(self) -> int:
        return len(self.conns)

    @property
    def requests(self) -> list[Request]:
        return [request for conn in self.conns for request in conn.requests]

    async def __aenter__(self) -> WireServer:
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", 0, limit=MAX_REQUEST_HEAD
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn = Conn(len(self.conns), reader, writer)
        self.conns.append(conn)
        self.open_now += 1
        self.max_open = max(self.max_open, self.open_now)
        try:
            await self.handler(conn)
        except ConnectionError:
            conn.closed_by_client.set()
        except asyncio.CancelledError:  # the server shutting down
            pass
        finally:
            self.open_now -= 1
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self._tasks.discard(task)

    async def all_closed_by_client(self, within_s: float = 5.0) -> None:
        """Wait until the client has closed every connection (a guard, not a timing check)."""
        with anyio.fail_after(within_s):
            for conn in self.conns:
                await conn.closed_by_client.wait()


def response(
    body: bytes,
    *,
    status: str = "200 OK",
    headers: list[tuple[str, str]] | None = None,
    length: bool = True,
    version: str = "HTTP/1.1",
) -> bytes:
    """A reply's bytes: the status line, ``headers`` (plus Content-Length unless ``length`` is
    false), a blank line, the body."""
    lines = [f"{version} {status}"]
    all_headers = list(headers or [("Content-Type", "application/json")])
    if length:
        all_headers.append(("Content-Length", str(len(body))))
    lines += [f"{k}: {v}" for k, v in all_headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def replying(*replies: bytes, then_close: bool = False) -> Handler:
    """A handler that answers each request on a connection with the next of ``replies`` (the
    last one repeated), closing the connection after a reply if ``then_close``; it closes at
    the client's EOF."""

    async def handler(conn: Conn) -> None:
        served = 0
        while await conn.read_request() is not None:
            await conn.send(replies[min(served, len(replies) - 1)])
            served += 1
            if then_close:
                return

    return handler


def per_connection(*handlers: Handler) -> Handler:
    """Connection ``i`` served by ``handlers[i]`` (the last one for any later connection)."""

    async def handler(conn: Conn) -> None:
        await handlers[min(conn.index, len(handlers) - 1)](conn)

    return handler


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
