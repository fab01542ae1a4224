"""The own HTTP/1.1 client's connections: per (host, port), newest idle first, under one bound
on all of them; an idle connection is not reused once the server closed it or after
:data:`IDLE_S` seconds."""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections import deque
from collections.abc import Iterable

from agentkit.models.http1.connection import Connection, Reply
from agentkit.models.http1.request import Target

__all__ = ["IDLE_S", "ConnectionTimeout", "Pool"]

IDLE_S = 4.0  # an idle connection older than this is closed instead of reused


class Pool:
    """Connections per (host, port) under one bound on all of them (idle, busy or being
    opened). A request that finds the bound reached drops the oldest idle connection to
    another server if there is one, else waits its turn."""

    def __init__(self, limit: int, connect_timeout_s: float, read_timeout_s: float) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self._idle: dict[tuple[str, int], list[Connection]] = {}
        self._open: set[Connection] = set()
        self._opening = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
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
            self._idle.setdefault((target.host, target.port), []).append(conn)
            self._wake()
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
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
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
        while True:
            if self._closed:
                raise RuntimeError("the HTTP client pool is closed")
            idle = self._idle.get(key)
            while idle:
                conn = idle.pop()
                if conn.closed or not conn.reusable or loop.time() - conn.idle_since > IDLE_S:
                    self._discard(conn)
                    continue
                return conn
            if self.open_connections >= self.limit:
                self._drop_oldest_idle()
            if self.open_connections < self.limit:
                return await self._connect(target, loop)
            await self._wait_turn(loop)

    async def _connect(self, target: Target, loop: asyncio.AbstractEventLoop) -> Connection:
        self._opening += 1
        try:
            connecting = loop.create_connection(
                lambda: Connection(loop, self.read_timeout_s), target.host, target.port
            )
            try:
                _, conn = await asyncio.wait_for(connecting, self.connect_timeout_s)
            except TimeoutError as exc:
                raise ConnectionTimeout(
                    f"connecting to {target.host}:{target.port} took over "
                    f"{self.connect_timeout_s:g} s"
                ) from exc
        except BaseException:
            self._opening -= 1
            self._wake()
            raise
        self._opening -= 1
        self._open.add(conn)
        return conn

    def _discard(self, conn: Connection) -> None:
        conn.close()
        if conn in self._open:
            self._open.discard(conn)
            self._wake()

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

    async def _wait_turn(self, loop: asyncio.AbstractEventLoop) -> None:
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._wake()  # the turn given to this request passes to the next
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


class ConnectionTimeout(TimeoutError):
    """Opening a connection took longer than the connect timeout."""
