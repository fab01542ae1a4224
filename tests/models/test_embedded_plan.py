"""plan_turn: when the embedded model is asked for a constrained call and when for an answer."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("numpy")  # the embedded-model extra
from agentkit.messages import ToolCall
from agentkit.models.embedded import plan_turn
from agentkit.models.embedded_plan import check_answer, repeats_a_call
from agentkit.models.grammar_reasoned import FirstLine, ReasonedCallConstraint

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
    assert isinstance(plan.constraint, ReasonedCallConstraint)
    assert plan.constraint.names == ["get_weather", "now"]
    assert "Tools:\n- get_weather()\n- now()\nCall a tool with <tool_call>" in plan.prompt
    assert plan.prompt.endswith("<|im_start|>assistant\n")


def test_tool_choice() -> None:
    named = plan_turn(
        [QUESTION], TOOLS, tool_choice={"type": "function", "function": {"name": "now"}}
    )
    assert isinstance(named.constraint, ReasonedCallConstraint)
    assert named.constraint.names == ["now"]
    none = plan_turn([QUESTION], TOOLS, tool_choice="none")
    assert isinstance(none.constraint, FirstLine)
    assert not none.constraint.calls
    assert "Tools:" not in none.prompt
    assert isinstance(plan_turn([QUESTION]).constraint, FirstLine)


def test_after_tool_results_the_answer_is_free_text_with_results_restated() -> None:
    plan = plan_turn([QUESTION, CALL, RESULT], TOOLS)
    assert isinstance(plan.constraint, FirstLine)
    assert plan.constraint.calls  # it may call again
    assert "Tools:" in plan.prompt  # the same system prompt as the call turn: its cache is reused
    assert "<tool_response>" not in plan.prompt
    assert (
        'The get_weather tool, called with {"city": "Oslo"}, returned: rain, 8C\n'
        "Now answer my question: Weather in Oslo?"
    ) in plan.prompt
    assert '{"name": "get_weather", "arguments": {"city": "Oslo"}}' in plan.prompt


def test_a_new_question_after_an_answer_calls_again() -> None:
    history: list[dict[str, Any]] = [
        QUESTION,
        CALL,
        RESULT,
        {"role": "assistant", "content": "Rainy."},
    ]
    plan = plan_turn([*history, {"role": "user", "content": "And in Rome?"}], TOOLS)
    assert isinstance(plan.constraint, ReasonedCallConstraint)
    assert 'The get_weather tool, called with {"city": "Oslo"}, returned: rain, 8C' in plan.prompt


def test_after_three_calls_the_answer_may_not_call_again() -> None:
    history: list[dict[str, Any]] = [QUESTION]
    for _ in range(3):
        history += [CALL, RESULT]
    plan = plan_turn(history, TOOLS)
    assert isinstance(plan.constraint, FirstLine)
    assert not plan.constraint.calls


def test_the_answer_check_wants_the_last_result_as_the_last_number() -> None:
    history = [QUESTION, CALL, {"role": "tool", "tool_call_id": "c1", "content": "126"}]
    assert check_answer(history, "The answer is 126.") is not None
    ok = check_answer(history, "(17 + 25) * 3 = 126.")
    assert ok is not None and ok.ok
    assert ok.tool == "get_weather" and ok.arguments == {"city": "Oslo"} and ok.result == "126"
    for wrong in ["The answer is 42.", "126 - 2 = 124", "", "1260", "It is 12.6"]:
        check = check_answer(history, wrong)
        assert check is not None and not check.ok, wrong
    assert check_answer([QUESTION], "anything") is None  # no tool result to check against
    text = [QUESTION, CALL, RESULT]
    assert check_answer(text, "In Oslo: rain, 8C today").ok  # type: ignore[union-attr]
    assert not check_answer(text, "Sunny.").ok  # type: ignore[union-attr]


def test_a_repeated_call_is_recognised() -> None:
    same = ToolCall(id="x", name="get_weather", arguments={"city": "Oslo"})
    other = ToolCall(id="y", name="get_weather", arguments={"city": "Rome"})
    assert repeats_a_call([QUESTION, CALL, RESULT], [same])
    assert not repeats_a_call([QUESTION, CALL, RESULT], [other])
    assert not repeats_a_call([QUESTION], [same])


@pytest.mark.parametrize("bad", [{"type": "function", "function": {"name": "nope"}}])
def test_unknown_named_tool(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="not among the tools"):
        plan_turn([QUESTION], TOOLS, tool_choice=bad)
