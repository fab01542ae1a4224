"""plan_turn: when the embedded model is asked for a constrained call and when for an answer."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("numpy")  # the embedded-model extra
from agentkit.models.embedded import plan_turn
from agentkit.models.grammar import ToolCallConstraint

TOOLS: list[dict[str, Any]] = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}},
    {"type": "function", "function": {"name": "now", "parameters": {"type": "object"}}},
]
QUESTION = {"role": "user", "content": "Weather in Oslo?"}
CALL = {
    "role": "assistant",
    "content": "",
    "tool_calls": [
        {"id": "c1", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}
    ],
}
RESULT = {"role": "tool", "tool_call_id": "c1", "content": "rain, 8C"}


def test_a_user_question_with_tools_gets_a_constrained_call() -> None:
    plan = plan_turn([QUESTION], TOOLS)
    assert isinstance(plan.constraint, ToolCallConstraint)
    assert plan.constraint.names == ["get_weather", "now"]
    assert "<tools>" in plan.prompt
    assert plan.prompt.endswith("<|im_start|>assistant\n")


def test_tool_choice() -> None:
    named = plan_turn(
        [QUESTION], TOOLS, tool_choice={"type": "function", "function": {"name": "now"}}
    )
    assert isinstance(named.constraint, ToolCallConstraint)
    assert named.constraint.names == ["now"]
    none = plan_turn([QUESTION], TOOLS, tool_choice="none")
    assert none.constraint is None
    assert "<tools>" not in none.prompt
    assert plan_turn([QUESTION]).constraint is None


def test_after_tool_results_the_answer_is_free_text_with_results_restated() -> None:
    plan = plan_turn([QUESTION, CALL, RESULT], TOOLS)
    assert plan.constraint is None
    assert "<tools>" not in plan.prompt
    assert "<tool_response>" not in plan.prompt
    assert (
        "The get_weather tool returned: rain, 8C\nNow answer my question: Weather in Oslo?"
        in plan.prompt
    )
    assert '{"name": "get_weather", "arguments": {"city": "Oslo"}}' in plan.prompt


def test_a_new_question_after_an_answer_calls_again() -> None:
    history: list[dict[str, Any]] = [
        QUESTION,
        CALL,
        RESULT,
        {"role": "assistant", "content": "Rainy."},
    ]
    plan = plan_turn([*history, {"role": "user", "content": "And in Rome?"}], TOOLS)
    assert plan.constraint is not None
    assert "The get_weather tool returned: rain, 8C" in plan.prompt


@pytest.mark.parametrize("bad", [{"type": "function", "function": {"name": "nope"}}])
def test_unknown_named_tool(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="not among the tools"):
        plan_turn([QUESTION], TOOLS, tool_choice=bad)
