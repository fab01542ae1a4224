"""Toolsets: order, filter, prefix, rename, composition, bound deps and limits, and an Agent
that runs a toolset's renamed tool end to end against the SGLang test server."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agentkit import Agent, EpisodeStatus, RunContext, tool
from agentkit.dialects.glm45 import format_assistant
from agentkit.messages import ToolMessage
from agentkit.models import SGLangChat
from agentkit.testing import SGLangTestServer
from agentkit.tool import ToolStatus
from agentkit.toolset import DuplicateToolName, Toolset
from agentkit_tools.browser import BROWSER_TOOLS, browser_open, browser_tools
from agentkit_tools.code import CODE_TOOLS, code_tools, read_file, run_tests
from agentkit_tools.search import search_tools

pytestmark = pytest.mark.anyio


@tool
def add(a: int, b: int) -> int:
    """Add two numbers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


@tool
def whoami(ctx: RunContext[Any]) -> str:
    """Say which deps the run has."""
    return repr(ctx.deps)


@tool(timeout=5)
def echo(text: str) -> str:
    """Repeat the text.

    Args:
        text: What to repeat.
    """
    return text


BASE = Toolset([add, whoami, echo])


def test_a_toolset_is_an_ordered_sequence_of_tools() -> None:
    assert BASE.names == ("add", "whoami", "echo")
    assert len(BASE) == 3 and BASE[0] is add and list(BASE) == [add, whoami, echo]
    assert BASE[1:].names == ("whoami", "echo") and isinstance(BASE[1:], Toolset)
    assert "add" in BASE and add in BASE and "nope" not in BASE
    assert BASE.get("echo") is echo
    with pytest.raises(KeyError, match="no tool named 'nope'"):
        BASE.get("nope")
    with pytest.raises(TypeError, match="not a Tool"):
        Toolset([add, "echo"])  # type: ignore[list-item]


def test_filter_by_names_or_predicate_keeps_the_order() -> None:
    assert BASE.filter({"echo", "add"}).names == ("add", "echo")
    assert BASE.filter(lambda t: bool(t.parameters["properties"])).names == ("add", "echo")
    assert BASE.filter(lambda t: t.timeout == 5).names == ("echo",)
    assert BASE.exclude(["whoami"]).names == ("add", "echo")
    with pytest.raises(KeyError, match="ghost"):
        BASE.filter(["add", "ghost"])
    with pytest.raises(TypeError, match="not one string"):
        BASE.filter("add")


async def test_prefix_and_rename_copy_the_tools() -> None:
    prefixed = BASE.prefix("math_")
    assert prefixed.names == ("math_add", "math_whoami", "math_echo")
    assert add.name == "add"  # the original is untouched
    renamed = BASE.rename({"add": "plus"})
    assert renamed.names == ("plus", "whoami", "echo")
    assert renamed[0].schema()["function"]["name"] == "plus"
    assert renamed[0].parameters == add.parameters and renamed[1] is whoami
    outcome = await renamed[0].call({"a": 2, "b": 3}, RunContext(deps=None))
    assert outcome.status is ToolStatus.OK and outcome.output == "5"
    with pytest.raises(KeyError, match="minus"):
        BASE.rename({"minus": "x"})
    with pytest.raises(ValueError, match="must be 1-64"):
        BASE.prefix("bad prefix ")
    with pytest.raises(DuplicateToolName, match="'echo'"):
        BASE.rename({"add": "echo"})


def test_adding_composes_and_refuses_duplicate_names() -> None:
    both = BASE.filter({"add"}) + [echo]  # noqa: RUF005 (the + under test)
    assert isinstance(both, Toolset) and both.names == ("add", "echo")
    before = [whoami] + BASE.filter({"add"})  # noqa: RUF005
    assert isinstance(before, Toolset) and before.names == ("whoami", "add")
    with pytest.raises(DuplicateToolName, match="two tools are named 'add'"):
        _ = BASE + Toolset([add])
    assert (BASE + BASE.prefix("again_")).names[3:] == ("again_add", "again_whoami", "again_echo")
    assert Toolset([add, whoami, echo]) == BASE and BASE.prefix("x_") != BASE


@dataclass
class Held:
    value: str


async def test_with_deps_binds_what_the_tool_sees() -> None:
    bound = BASE.with_deps(Held("fixed"))
    outcome = await bound.get("whoami").call({}, RunContext(deps=Held("run's own")))
    assert outcome.output == "Held(value='fixed')"
    per_call = BASE.with_deps_from(lambda ctx: Held(f"turn {ctx.turn}"))
    outcome = await per_call.get("whoami").call({}, RunContext(deps=None, turn=4))
    assert outcome.output == "Held(value='turn 4')"
    original = await whoami.call({}, RunContext(deps=Held("run's own")))
    assert original.output == 'Held(value="run\'s own")'


async def test_a_bound_sync_tool_sees_the_bound_deps_when_it_runs_inline() -> None:
    """Binding deps must hold on a sync tool's inline fast path too (``inline=True``, or the
    adaptive mode once calls are quick): every call sees the bound deps, never the run's."""

    @tool(inline=True)
    def who(ctx: RunContext[Any]) -> str:
        return repr(ctx.deps)

    @tool(inline=None)
    def who_adaptive(ctx: RunContext[Any]) -> str:
        return repr(ctx.deps)

    bound = Toolset([who, who_adaptive]).with_deps(Held("BOUND"))
    for name in ("who", "who_adaptive"):
        seen = {
            (await bound.get(name).call({}, RunContext(deps=Held("OUTER")))).output
            for _ in range(12)
        }
        assert seen == {"Held(value='BOUND')"}, name


async def test_a_failing_deps_resolver_is_an_error_outcome() -> None:
    def refuse(ctx: RunContext[Any]) -> Any:
        raise RuntimeError("no resource today")

    outcome = await BASE.with_deps_from(refuse).get("add").call({"a": 1, "b": 2}, RunContext(None))
    assert outcome.status is ToolStatus.ERROR
    assert "no resource today" in outcome.output


def test_with_limits_sets_timeout_and_output_size() -> None:
    limited = BASE.with_limits(timeout=2.5, max_output_chars=100)
    assert [t.timeout for t in limited] == [2.5, 2.5, 2.5]
    assert [t.max_output_chars for t in limited] == [100, 100, 100]
    only_size = BASE.with_limits(max_output_chars=50)
    assert [t.timeout for t in only_size] == [t.timeout for t in BASE]
    assert BASE.with_limits(timeout=None)[0].timeout is None
    with pytest.raises(ValueError, match="positive"):
        BASE.with_limits(max_output_chars=0)


def test_the_builtin_factories_return_toolsets_of_the_module_level_tools() -> None:
    assert isinstance(code_tools(), Toolset) and code_tools() is CODE_TOOLS
    assert code_tools().get("read_file") is read_file
    assert code_tools().get("run_tests") is run_tests
    assert browser_tools().get("browser_open") is browser_open
    assert browser_tools() is BROWSER_TOOLS
    web = browser_tools(prefix="web_")
    assert web.names[0] == "web_open" and web.get("web_open").parameters == browser_open.parameters
    assert [t.timeout for t in browser_tools(timeout=5)] == [5] * len(BROWSER_TOOLS)
    assert search_tools().names == ("search", "read_document", "read_url")
    assert [t.max_output_chars for t in code_tools(max_output_chars=123)] == [123] * 8
    everything = code_tools() + browser_tools() + search_tools()
    assert len(everything) == 8 + 10 + 3


async def test_an_agent_takes_a_toolset_and_calls_a_renamed_tool() -> None:
    tools: Toolset = BASE.filter({"add", "echo"}).prefix("calc_")
    script = [
        format_assistant("Add.", "", [("calc_add", {"a": 20, "b": 22})]),
        format_assistant("Done.", "42", []),
    ]
    async with SGLangTestServer(policy=script) as server:
        model = SGLangChat(server.base_url)
        async with Agent(model=model, tools=tools) as agent:
            assert [t.name for t in agent.tools] == ["calc_add", "calc_echo"]
            result = await agent.run("What is 20 + 22?")
    assert result.status is EpisodeStatus.COMPLETED, result.error
    replies = [m.content for m in result.messages if isinstance(m, ToolMessage)]
    assert replies == ["42"]
    assert result.output == "42"


NOTES_SERVER = Path(__file__).resolve().parents[2] / "examples" / "mcp_agent" / "notes_server.py"


@pytest.fixture
def notes_server(tmp_path: Path) -> Iterator[Any]:
    pytest.importorskip("mcp", reason="the mcp extra is not installed")
    from agentkit_tools.mcp import StdioServer

    with open(tmp_path / "server.log", "w") as errlog:
        yield StdioServer(
            command=sys.executable, args=[str(NOTES_SERVER)], name="notes", errlog=errlog
        )


async def test_an_mcp_servers_tools_compose_with_local_ones(notes_server: Any) -> None:
    from agentkit_tools.mcp import MCPToolset

    async with MCPToolset(notes_server, include={"add", "list_notes"}) as mcp:
        remote = Toolset(mcp.tools)
        with pytest.raises(DuplicateToolName, match="'add'"):
            _ = BASE + remote  # both sides have an "add"
        tools = BASE + remote.prefix("notes_").rename({"notes_add": "remote_add"})
        assert tools.names[3:] == ("remote_add", "notes_list_notes")
        outcome = await tools.get("remote_add").call({"a": 2, "b": 40}, RunContext(None))
    assert outcome.status is ToolStatus.OK and outcome.output == "42"
