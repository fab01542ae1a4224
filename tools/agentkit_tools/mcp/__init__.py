"""MCP client tools: an MCP server's tools as agentkit tools (``pip install 'agentkit-tools[mcp]'``).

from agentkit_tools.mcp import MCPToolset, StdioServer, HttpServer

async with MCPToolset(StdioServer(command="mcp-server-time")) as time_tools:
    agent = Agent(model, tools=time_tools.tools)
    result = await agent.run("What time is it in Tokyo?")
"""

from __future__ import annotations

try:  # checked once here, so that every submodule says what to install
    import mcp  # noqa: F401
except ImportError as exc:  # depends on the install
    raise ImportError("MCP tools need the mcp SDK: pip install 'agentkit-tools[mcp]'") from exc

from .results import local_name, result_text
from .servers import HttpServer, MCPServerSpec, StdioServer
from .toolset import MCPConnectionError, MCPToolset

__all__ = [
    "HttpServer",
    "MCPConnectionError",
    "MCPServerSpec",
    "MCPToolset",
    "StdioServer",
    "local_name",
    "result_text",
]
