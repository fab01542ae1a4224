"""A bad agent configuration fails where the agent is built, with a message naming the problem."""

from __future__ import annotations

import traceback
from typing import Any

import pytest

from agentkit import Agent, tool
from agentkit.models import SGLangChat
from agentkit.tool import Tool

MODEL = SGLangChat("http://127.0.0.1:9")


@tool
def lookup(q: str) -> str:
    """Look up.

    Args:
        q: query
    """
    return q


@tool(name="lookup")
def lookup_again(q: str) -> str:
    """Another tool with the same name."""
    return q


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"max_turns": 0}, ValueError, "max_turns must be at least 1, got 0"),
        ({"max_turns": 2.5}, TypeError, "max_turns must be an int, not float"),
        ({"max_turns": True}, TypeError, "max_turns must be an int, not bool"),
        ({"output_retries": -1}, ValueError, "output_retries must be at least 0, got -1"),
        ({"max_parallel_tools": 0}, ValueError, "max_parallel_tools must be at least 1, got 0"),
        ({"max_tool_calls_per_turn": 0}, ValueError, "max_tool_calls_per_turn must be at least 1"),
        ({"max_tool_calls_per_turn": "2"}, TypeError, "must be an int or None, not str"),
        ({"tools": [lookup, lookup_again]}, ValueError, "two tools are named 'lookup'"),
        ({"tools": [lookup, "lookup"]}, TypeError, "tools[1] is not a tool: 'lookup' (str)"),
        ({"tools": [lookup, 3]}, TypeError, "tools[1] is not a tool: 3 (int)"),
        ({"tools": lookup}, TypeError, "tools must be a list of tools, not Tool"),
        ({"tools": [lambda q: q]}, ValueError, "tools[0] (<lambda>): tool name '<lambda>'"),
        ({"recorder": object()}, TypeError, "recorder must have an async record(item) method"),
        ({"settings": {"max_tokens": 5}}, TypeError, "settings must be a ModelSettings"),
        ({"instructions": ["be brief"]}, TypeError, "instructions must be a str, not list"),
    ],
)
def test_bad_configuration_is_refused_with_a_clear_message(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as caught:
        Agent(model=MODEL, **kwargs)
    assert message in str(caught.value)


def test_a_tool_named_like_the_builtin_final_result_is_refused() -> None:
    from pydantic import BaseModel

    class Answer(BaseModel):
        value: int

    @tool
    def final_result(value: int) -> int:
        """Mine."""
        return value

    with pytest.raises(ValueError, match=r"two tools are named 'final_result'.*built-in"):
        Agent(model=MODEL, tools=[final_result], output_type=Answer)


def test_a_non_model_is_refused() -> None:
    with pytest.raises(TypeError, match=r"model must be a model backend.*str has no"):
        Agent(model="http://127.0.0.1:9")  # type: ignore[arg-type]


def test_the_error_points_at_the_line_that_built_the_agent() -> None:
    try:
        Agent(model=MODEL, max_turns=-3)  # the line the traceback must name
    except ValueError as exc:
        frames = traceback.extract_tb(exc.__traceback__)
    else:
        raise AssertionError("no error")
    assert frames[0].name == "test_the_error_points_at_the_line_that_built_the_agent"
    assert frames[0].line is not None and "max_turns=-3" in frames[0].line


def test_a_good_configuration_builds() -> None:
    agent = Agent(
        model=MODEL,
        tools=[lookup, Tool("raw", "Raw.", {"type": "object", "properties": {}}, _handler)],
        max_turns=1,
        output_retries=0,
        max_parallel_tools=1,
        max_tool_calls_per_turn=1,
    )
    assert [t.name for t in agent.tools] == ["lookup", "raw"]
    assert not hasattr(agent, "streaming")  # never meant anything; removed


async def _handler(arguments: dict[str, Any], ctx: Any) -> str:
    return "ok"
