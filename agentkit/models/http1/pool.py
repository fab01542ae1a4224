"""The own HTTP/1.1 client's connections: per (host, port), newest idle first, under one bound
on all of them; an idle connection is not reused once the server closed it or after
:data:`IDLE_S` seconds."""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections import deque
from collections.abc import Iterable

from agentkit.models.http1.connection import MAX_BODY, Connection, Reply
from agentkit.models.http1.request import Target

__all__ = ["IDLE_S", "ConnectionTimeout", "Pool"]

IDLE_S = 4.0  # an idle connection older than this is closed instead of reused


_Key = tuple[str, int]


class Pool:
    """Connections per (host, port) under one bound on all of them (idle, busy or being
    opened). A request that finds the bound reached drops the oldest idle connection to
    another server if there is one, else waits its turn: a connection that comes free goes
    straight to the request waiting longest (closed, and its place given, if that request is
    for another server), and so does a place that comes free, so a request arriving later
    never takes it first."""

    def __init__(
        self,
        limit: int,
        connect_timeout_s: float,
        read_timeout_s: float,
        max_body_bytes: int = MAX_BODY,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.max_body_bytes = max_body_bytes  # a longer reply body, sent or decoded, fails
        self._idle: dict[_Key, list[Connection]] = {}
        self._open: dict[Connection, _Key] = {}  # idle or busy
        self._opening = 0  # connections being opened, or places given to a waiter to open one
        # the waiting requests, longest first: each is given a connection to its server, or
        # None for a place (counted in _opening) to open one in
        self._waiters: deque[tuple[_Key, asyncio.Future[Connection | None]]] = deque()
        self._closed = False

    @property
    def open_connections(self) -> int:
        return len(self._open) + self._opening

    async def post(self, target: Target, head: bytes, body: bytes) -> Reply:
        """POST ``body`` with ``head`` (from :func:`request_head`) and return the reply."""
        data = b"%s%d\r\n\r\n%s" % (head, len(body), body)
        conn = await self._acquire(target)
        try:
            reply = await conn.request(data)
        except BaseException:
            self._discard(conn)
            raise
        if conn.reusable and not conn.closed and not self._closed:
            conn.idle_since = asyncio.get_running_loop().time()
            self._release(conn)
        else:
            self._discard(conn)
        return reply

    async def close(self) -> None:
        self._closed = True
        for conn in list(self._open):
            conn.close()
        self._open.clear()
        self._idle.clear()
        while self._waiters:
            _, waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(RuntimeError("the HTTP client pool is closed"))
        await asyncio.sleep(0)  # let the transports run their close callbacks

    def __del__(self) -> None:
        # getattr: __init__ may have raised before setting it (a limit below 1)
        opened: Iterable[Connection] = getattr(self, "_open", ())
        still_open = [conn for conn in opened if not conn.closed]
        if still_open:
            warnings.warn(
                f"Unclosed HTTP client pool with {len(still_open)} open connection(s)",
                ResourceWarning,
                source=self,
                stacklevel=1,
            )
            for conn in still_open:
                with contextlib.suppress(RuntimeError):  # its loop is closed already
                    conn.close()

    # --- connections

    async def _acquire(self, target: Target) -> Connection:
        key = (target.host, target.port)
        loop = asyncio.get_running_loop()
        if self._closed:
            raise RuntimeError("the HTTP client pool is closed")
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if self._usable(conn, loop):
                return conn
            self._discard(conn)
        if self.open_connections >= self.limit:
            self._drop_oldest_idle()
        if self.open_connections < self.limit:
            self._opening += 1
            return await self._connect(target, loop)
        given = await self._wait_turn(key, loop)
        if given is not None:
            if self._usable(given, loop):
                return given
            # closed since it was given (the server closed it): its place, for a new one
            given.close()
            if self._open.pop(given, None) is not None:
                self._opening += 1
                return await self._connect(target, loop)
            raise RuntimeError("the HTTP client pool is closed")
        return await self._connect(target, loop)

    @staticmethod
    def _usable(conn: Connection, loop: asyncio.AbstractEventLoop) -> bool:
        return not conn.closed and conn.reusable and loop.time() - conn.idle_since <= IDLE_S

    async def _connect(self, target: Target, loop: asyncio.AbstractEventLoop) -> Connection:
        """A new connection to ``target``, in a place already counted in ``_opening``."""
        try:
            if self._closed:
                raise RuntimeError("the HTTP client pool is closed")
            try:
                # asyncio.timeout, not wait_for: Python 3.11's wait_for returns a connection
                # made in the step the caller was cancelled and drops the cancellation
                async with asyncio.timeout(self.connect_timeout_s):
                    _, conn = await loop.create_connection(
                        lambda: Connection(loop, self.read_timeout_s, self.max_body_bytes),
                        target.host,
                        target.port,
                    )
            except TimeoutError as exc:
                raise ConnectionTimeout(
                    f"connecting to {target.host}:{target.port} took over "
                    f"{self.connect_timeout_s:g} s"
                ) from exc
        except BaseException:
            self._opening -= 1
            self._give_place()
            raise
        self._opening -= 1
        if self._closed:
            conn.close()
            raise RuntimeError("the HTTP client pool is closed")
        self._open[conn] = (target.host, target.port)
        return conn

    def _release(self, conn: Connection) -> None:
        """``conn`` is free and reusable: to the request waiting longest, else idle."""
        key = self._open.get(conn)
        if key is None:  # the pool was closed meanwhile
            conn.close()
            return
        while self._waiters:
            wanted, waiter = self._waiters.popleft()
            if waiter.done():
                continue
            if wanted == key:
                waiter.set_result(conn)
            else:  # a request to another server: this connection's place is its
                del self._open[conn]
                conn.close()
                self._opening += 1
                waiter.set_result(None)
            return
        self._idle.setdefault(key, []).append(conn)

    def _discard(self, conn: Connection) -> None:
        conn.close()
        if self._open.pop(conn, None) is not None:
            self._give_place()

    def _give_place(self) -> None:
        """A place under the bound came free: to the request waiting longest, if any."""
        while self._waiters:
            _, waiter = self._waiters.popleft()
            if not waiter.done():
                self._opening += 1
                waiter.set_result(None)
                return

    def _drop_oldest_idle(self) -> None:
        oldest: Connection | None = None
        for conns in self._idle.values():
            if conns and (oldest is None or conns[0].idle_since < oldest.idle_since):
                oldest = conns[0]
        if oldest is not None:
            for conns in self._idle.values():
                if conns and conns[0] is oldest:
                    del conns[0]
                    break
            self._discard(oldest)

    async def _wait_turn(self, key: _Key, loop: asyncio.AbstractEventLoop) -> Connection | None:
        """Wait to be given a connection to ``key`` or (``None``) a place to open one in."""
        waiter: asyncio.Future[Connection | None] = loop.create_future()
        entry = (key, waiter)
        self._waiters.append(entry)
        try:
            return await waiter
        except BaseException:
            if not waiter.done() or waiter.cancelled():
                waiter.cancel()
                with contextlib.suppress(ValueError):
                    self._waiters.remove(entry)
            elif waiter.exception() is None:  # given something, then cancelled: pass it on
                given = waiter.result()
                if given is None:
                    self._opening -= 1
                    self._give_place()
                else:
                    self._release(given)
            raise


class ConnectionTimeout(TimeoutError):
    """Opening a connection took longer than the connect timeout."""
