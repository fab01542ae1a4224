"""An MCP server's tools as agentkit tools, over one connection the toolset owns.

``async with MCPToolset(StdioServer(command="mcp-server-time")) as toolset`` connects, lists the
server's tools and exposes them as :class:`~agentkit.tool.Tool` objects (``toolset.tools``) for an
``Agent``. The connection lives in a task of the toolset's own task group, so it is opened and
closed in one task whichever tool call triggered it. A call on a dead server returns an error
observation (``ToolStatus.ERROR``) and drops the connection; the next call reconnects (a new
process for stdio). Leaving the ``async with`` closes the connection and the server process.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Self

import anyio
import mcp_types as mt
from anyio.abc import TaskGroup, TaskStatus
from mcp import Client
from mcp.shared.exceptions import MCPError

from agentkit.closing import AsyncCloseable
from agentkit.tool import RunContext, Tool, ToolError

from .results import input_schema, local_name, result_text
from .servers import MCPServerSpec

log = logging.getLogger(__name__)


class MCPConnectionError(ToolError):
    """The MCP server could not be reached, or the connection broke during a call."""


@dataclass
class _Connection:
    client: Client
    stop: anyio.Event = field(default_factory=anyio.Event)
    broken: BaseException | None = None


class MCPToolset(AsyncCloseable):
    """The tools of one MCP server, with a connection that reconnects after the server dies.

    Args:
        server: a :class:`StdioServer` or :class:`HttpServer`.
        prefix: put before each tool's name (``prefix_name``) to keep two servers' tools apart.
        timeout: seconds one tool call may take; over it the call is a ``timeout`` outcome.
        connect_timeout: seconds to connect and list tools.
        include: keep only these remote tool names (``None`` keeps all).
    """

    def __init__(
        self,
        server: MCPServerSpec,
        *,
        prefix: str | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 30.0,
        include: set[str] | None = None,
        max_output_chars: int = 16_000,
    ) -> None:
        self.server = server
        self.prefix = prefix
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.include = include
        self.max_output_chars = max_output_chars
        self.tools: list[Tool] = []
        self.remote_tools: list[mt.Tool] = []
        self.connects = 0
        self._tg: TaskGroup | None = None
        self._conn: _Connection | None = None
        self._lock = anyio.Lock()
        self._closed = False

    @property
    def connected(self) -> bool:
        return self._conn is not None and self._conn.broken is None

    async def __aenter__(self) -> Self:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        try:
            await self.refresh_tools()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def aclose(self) -> None:
        """Close the connection (and the server process for stdio); idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._conn is not None:
            self._conn.stop.set()
            self._conn = None
        if self._tg is not None:
            tg, self._tg = self._tg, None
            await tg.__aexit__(None, None, None)

    async def refresh_tools(self) -> list[Tool]:
        """List the server's tools again (connecting if needed) and rebuild ``tools``."""
        client = await self._client()
        listed: list[mt.Tool] = []
        cursor: str | None = None
        with anyio.fail_after(self.connect_timeout):
            while True:
                page = await client.list_tools(cursor=cursor)
                listed.extend(page.tools)
                cursor = page.next_cursor
                if not cursor:
                    break
        keep = [t for t in listed if self.include is None or t.name in self.include]
        self.remote_tools = keep
        self.tools = [self._wrap(t) for t in keep]
        return self.tools

    async def call(self, name: str, arguments: dict[str, Any]) -> mt.CallToolResult:
        """Call a remote tool by its server-side name; raises :class:`MCPConnectionError` when
        the server is unreachable or the connection breaks (and drops it for a reconnect)."""
        conn = await self._connection()
        try:
            return await conn.client.call_tool(name, arguments)
        except anyio.get_cancelled_exc_class():
            raise
        except Exception as exc:
            if _is_server_reply(exc):
                raise
            self._drop(conn, exc)
            raise MCPConnectionError(
                f"MCP server {self.server.label} failed during {name!r}: {_describe(exc)}"
            ) from exc

    def _wrap(self, remote: mt.Tool) -> Tool:
        remote_name = remote.name

        async def handler(values: dict[str, Any], ctx: RunContext[Any]) -> str:
            try:
                result = await self.call(remote_name, values)
            except MCPError as exc:
                raise ToolError(f"MCP error {exc.error.code}: {exc.error.message}") from exc
            text = result_text(result)
            if result.is_error:
                raise ToolError(text or f"MCP tool {remote_name!r} reported an error")
            return text

        return Tool(
            local_name(remote_name, self.prefix),
            remote.description or remote.title or "",
            input_schema(remote),
            handler,
            timeout=self.timeout,
            max_output_chars=self.max_output_chars,
        )

    async def _client(self) -> Client:
        return (await self._connection()).client

    async def _connection(self) -> _Connection:
        if self._closed or self._tg is None:
            raise MCPConnectionError("the MCP toolset is closed (use it inside `async with`)")
        conn = self._conn
        if conn is not None and conn.broken is None:
            return conn
        async with self._lock:
            conn = self._conn
            if conn is not None and conn.broken is None:
                return conn
            tg = self._tg
            if tg is None:
                raise MCPConnectionError("the MCP toolset is closed")
            try:
                with anyio.fail_after(self.connect_timeout):
                    started: _Connection | BaseException = await tg.start(self._hold)
            except TimeoutError as exc:
                raise MCPConnectionError(
                    f"could not connect to MCP server {self.server.label} within "
                    f"{self.connect_timeout:g} s"
                ) from exc
            if isinstance(started, BaseException):
                raise MCPConnectionError(
                    f"could not connect to MCP server {self.server.label}: {_describe(started)}"
                ) from started
            self._conn = started
            self.connects += 1
            return started

    async def _hold(self, *, task_status: TaskStatus[_Connection | BaseException]) -> None:
        """Own one connection: open it, hand it out, wait for stop, close it in this task.
        Failures never leave this task (they would cancel the caller's run)."""
        conn: _Connection | None = None
        try:
            async with Client(self.server.transport()) as client:
                conn = _Connection(client)
                task_status.started(conn)
                await conn.stop.wait()
        except Exception as exc:
            if conn is None:
                task_status.started(exc)
            else:
                conn.broken = conn.broken or exc
                log.warning("MCP connection to %s ended: %s", self.server.label, _describe(exc))
        finally:
            if conn is not None and conn.broken is None:
                conn.broken = ConnectionError("closed")

    def _drop(self, conn: _Connection, exc: BaseException) -> None:
        conn.broken = conn.broken or exc
        conn.stop.set()
        if self._conn is conn:
            self._conn = None


def _is_server_reply(exc: BaseException) -> bool:
    """A JSON-RPC error the server answered with (the connection is fine)."""
    return isinstance(exc, MCPError) and exc.error.code not in _TRANSPORT_CODES


# The SDK reports a closed connection as MCPError with CONNECTION_CLOSED (-32000).
_TRANSPORT_CODES = {-32000}


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
