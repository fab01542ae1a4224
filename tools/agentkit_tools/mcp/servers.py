"""Where an MCP server lives: a command to launch (stdio) or a URL (streamable HTTP).

Each spec opens a fresh transport on every call to :meth:`transport`, so a toolset can reconnect
after the server died (a new process for stdio, a new HTTP session for a URL).
"""

from __future__ import annotations

import sys
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


@dataclass(frozen=True)
class StdioServer:
    """An MCP server started as a subprocess and spoken to over its stdin/stdout."""

    command: str
    args: list[str] = field(default_factory=list)
    env: dict[str, str] | None = None
    cwd: Path | None = None
    name: str = ""
    errlog: TextIO | None = None
    """Where the server's stderr goes (a real file); ``None`` means this process's stderr."""

    @property
    def label(self) -> str:
        return self.name or Path(self.command).name

    def transport(self) -> AbstractAsyncContextManager[Any]:
        params = StdioServerParameters(
            command=self.command, args=list(self.args), env=self.env, cwd=self.cwd
        )
        return stdio_client(params, errlog=self.errlog or sys.__stderr__ or sys.stderr)


@dataclass(frozen=True)
class HttpServer:
    """An MCP server reached over streamable HTTP at ``url`` (e.g. ``http://127.0.0.1:8000/mcp``)."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or self.url

    def transport(self) -> AbstractAsyncContextManager[Any]:
        if not self.headers:
            return streamable_http_client(self.url)
        client = create_mcp_http_client(headers=dict(self.headers))
        return _HttpTransport(self.url, client)


class _HttpTransport:
    """Opens a streamable HTTP transport over a client this object owns and closes."""

    def __init__(self, url: str, client: Any) -> None:
        self._url = url
        self._client = client
        self._inner: AbstractAsyncContextManager[Any] | None = None

    async def __aenter__(self) -> Any:
        await self._client.__aenter__()
        self._inner = streamable_http_client(self._url, http_client=self._client)
        return await self._inner.__aenter__()

    async def __aexit__(self, *exc: Any) -> None:
        try:
            if self._inner is not None:
                await self._inner.__aexit__(*exc)
        finally:
            await self._client.__aexit__(*exc)


MCPServerSpec = StdioServer | HttpServer
