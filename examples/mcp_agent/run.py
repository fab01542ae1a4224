"""An agent using MCP tools: the example notes server, and mcp-server-time when installed.

python examples/mcp_agent/run.py                   # scripted GLM-4.5 (agentkit's test server)
python examples/mcp_agent/run.py --model-url URL   # GLM-4.5 on SGLang
python examples/mcp_agent/run.py --http-url http://127.0.0.1:8765/mcp
                                                   # the notes server over streamable HTTP
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import sys
from pathlib import Path

import anyio

from agentkit import Agent, ToolMessage
from agentkit.dialects.glm45 import format_assistant
from agentkit.models import SGLangChat
from agentkit.testing import SGLangTestServer
from agentkit_tools.mcp import HttpServer, MCPServerSpec, MCPToolset, StdioServer

HERE = Path(__file__).resolve().parent

SCRIPT = [
    format_assistant(
        "Save it, then check the time in Tokyo.",
        "",
        [
            ("notes_save_note", {"text": "call the Tokyo office"}),
            ("time_get_current_time", {"timezone": "Asia/Tokyo"}),
        ],
    ),
    format_assistant("Both done.", "Saved your note; I also looked up the time in Tokyo.", []),
]


async def main(model_url: str | None, http_url: str | None) -> None:
    notes: MCPServerSpec = (
        HttpServer(url=http_url, name="notes")
        if http_url
        else StdioServer(command=sys.executable, args=[str(HERE / "notes_server.py")], name="notes")
    )
    async with contextlib.AsyncExitStack() as stack:
        toolsets = [await stack.enter_async_context(MCPToolset(notes, prefix="notes"))]
        if importlib.util.find_spec("mcp_server_time") is not None:
            time_server = StdioServer(command=sys.executable, args=["-m", "mcp_server_time"])
            toolsets.append(await stack.enter_async_context(MCPToolset(time_server, prefix="time")))
        url = model_url
        if url is None:
            url = (await stack.enter_async_context(SGLangTestServer(policy=SCRIPT))).base_url
        tools = [t for toolset in toolsets for t in toolset.tools]
        print("tools:", ", ".join(t.name for t in tools))
        agent: Agent[None, str] = Agent(model=SGLangChat(url), tools=tools)
        async with agent:
            result = await agent.run("Note down: call the Tokyo office. What time is it there?")
        for message in result.messages:
            if isinstance(message, ToolMessage):
                print(f"[{message.name}] {message.content}")
        print(f"{result.status.value}: {result.text}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-url", default=None)
    parser.add_argument("--http-url", default=None)
    args = parser.parse_args()
    anyio.run(main, args.model_url, args.http_url)
