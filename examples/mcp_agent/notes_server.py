"""A small MCP server for the agentkit MCP example and tests: notes, arithmetic and faults.

    python examples/mcp_agent/notes_server.py                      # stdio
    python examples/mcp_agent/notes_server.py --http --port 8765   # streamable HTTP on 127.0.0.1

Tools: ``add`` (typed arguments), ``save_note`` / ``list_notes`` (state kept by the process),
``fail`` (a tool error), ``slow`` (sleeps, for timeouts), ``crash`` (the process exits at once,
for server-death handling) and ``pid`` (which process answered, to see a reconnect).
"""

from __future__ import annotations

import argparse
import os

import anyio
from mcp.server.mcpserver import MCPServer

server = MCPServer("agentkit-notes")
notes: list[str] = []


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def save_note(text: str) -> str:
    """Save a note and say how many there are."""
    notes.append(text)
    return f"saved note {len(notes)}"


@server.tool()
def list_notes() -> str:
    """All saved notes, one a line."""
    return "\n".join(notes) or "(no notes)"


@server.tool()
def fail(reason: str) -> str:
    """Always fails with the given reason."""
    raise ValueError(reason)


@server.tool()
async def slow(seconds: float) -> str:
    """Sleep, then answer."""
    await anyio.sleep(seconds)
    return f"slept {seconds:g} s"


@server.tool()
def crash() -> str:
    """End the server process at once, without answering."""
    os._exit(3)


@server.tool()
def pid() -> int:
    """The id of the server process."""
    return os.getpid()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--http", action="store_true", help="serve streamable HTTP")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    if args.http:
        server.settings.log_level = "WARNING"
        server.run("streamable-http", host="127.0.0.1", port=args.port)
    else:
        server.run("stdio")


if __name__ == "__main__":
    main()
