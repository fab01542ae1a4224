"""An Agent driven by the scripted SGLang test server (GLM-4.5 completions) calling MCP tools,
through a server death in the middle of the run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp", reason="the mcp extra is not installed")

from agentkit import Agent, ToolMessage
from agentkit.dialects.glm45 import format_assistant
from agentkit.models import SGLangChat
from agentkit.testing import SGLangTestServer
from agentkit_tools.mcp import MCPToolset, StdioServer

pytestmark = pytest.mark.anyio

SERVER = Path(__file__).resolve().parents[2] / "examples" / "mcp_agent" / "notes_server.py"


def turn(reasoning: str, *calls: tuple[str, dict[str, Any]], content: str = "") -> str:
    return format_assistant(reasoning, content, list(calls), thinking=True)


SCRIPT = [
    turn(
        "Save the note and add the numbers at once.",
        ("notes_save_note", {"text": "buy milk"}),
        ("notes_add", {"a": 2, "b": 3}),
    ),
    turn("Now break the server.", ("notes_crash", {})),
    turn("Did the note survive?", ("notes_list_notes", {})),
    turn("Done.", content="2 + 3 = 5; the note was lost when the server restarted."),
]


async def test_agent_calls_mcp_tools_and_survives_a_server_crash(tmp_path: Path) -> None:
    spec = StdioServer(
        command=sys.executable,
        args=[str(SERVER)],
        name="notes",
        errlog=(tmp_path / "notes.log").open("w"),
    )
    async with (
        SGLangTestServer(policy=SCRIPT) as llm,
        MCPToolset(spec, prefix="notes") as notes,
    ):
        agent: Agent[None, str] = Agent(model=SGLangChat(llm.base_url), tools=notes.tools)
        async with agent:
            result = await agent.run("Save 'buy milk', add 2 and 3, then test a crash.")
        assert notes.connects == 2

    assert result.ok, result.error
    assert result.text.startswith("2 + 3 = 5")
    replies = [m for m in result.messages if isinstance(m, ToolMessage)]
    assert [(m.name, m.is_error) for m in replies] == [
        ("notes_save_note", False),
        ("notes_add", False),
        ("notes_crash", True),
        ("notes_list_notes", False),
    ]
    assert [m.content for m in replies[:2]] == ["saved note 1", "5"]
    assert "notes" in replies[2].content and replies[2].content.startswith("Error:")
    assert replies[3].content == "(no notes)"
    steps = [s for s in result.trajectory.steps if s.step_type == "tool"]
    assert [s.status for s in steps] == ["ok", "ok", "error", "ok"]
    assert steps[2].error_type == "MCPConnectionError"
    # the model saw the MCP tool schemas as they were listed
    tools_sent = llm.requests[0].request["tools"]
    add = next(t for t in tools_sent if t["function"]["name"] == "notes_add")
    assert add["function"]["parameters"]["required"] == ["a", "b"]
