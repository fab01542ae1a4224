"""Parser edge cases: an argument key given twice is reported (the last value is kept, as
SGLang's glm45 parser keeps it), and a number JSON cannot hold (``1e999``) never becomes ``inf``:
``arguments_json()`` is always valid JSON."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from agentkit.dialects import glm45, hermes
from agentkit.messages import ToolCall

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "f",
            "parameters": {
                "type": "object",
                "properties": {"n": {"type": "number"}, "tags": {"type": "array"}},
            },
        },
    }
]


def _strict(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def _glm(body: str, tools: Any = None) -> glm45.Parsed:
    return glm45.parse(f"<tool_call>f\n{body}</tool_call>", tools, thinking=False)


def _pair(key: str, value: str) -> str:
    return f"<arg_key>{key}</arg_key>\n<arg_value>{value}</arg_value>\n"


@pytest.mark.parametrize("tools", [None, TOOLS])
def test_glm_duplicate_key_keeps_the_last_value_and_says_so(tools: Any) -> None:
    parsed = _glm(_pair("n", "1") + _pair("n", "2"), tools)
    assert parsed.tool_calls[0].arguments == {"n": 2}
    problems = [p for p in parsed.problems if p.kind == "duplicate_argument"]
    assert len(problems) == 1 and "'n'" in problems[0].message
    assert problems[0].call_index == 0


def test_glm_duplicate_key_streamed_in_small_chunks_gives_the_same_result() -> None:
    text = "<tool_call>f\n" + _pair("n", "1") + _pair("n", "2") + "</tool_call>"
    parser = glm45.StreamParser(TOOLS, thinking=False)
    for i in range(0, len(text), 3):
        parser.feed(text[i : i + 3])
    parser.close()
    assert parser.result() == glm45.parse(text, TOOLS, thinking=False)


@pytest.mark.parametrize("value", ["1e999", "-1e999", "[1, 1e999]", '{"a": 1e999}'])
def test_glm_untyped_non_finite_number_stays_text(value: str) -> None:
    parsed = _glm(_pair("x", value))
    call = parsed.tool_calls[0]
    assert call.arguments == {"x": value}
    assert _strict(call.arguments_json()) == {"x": value}
    assert [p.kind for p in parsed.problems] == ["invalid_argument_value"]


@pytest.mark.parametrize(("key", "value"), [("n", "1e999"), ("tags", "[1e999]")])
def test_glm_typed_non_finite_number_stays_text(key: str, value: str) -> None:
    parsed = _glm(_pair(key, value), TOOLS)
    assert parsed.tool_calls[0].arguments == {key: value}
    assert [p.kind for p in parsed.problems] == ["invalid_argument_value"]
    _strict(parsed.tool_calls[0].arguments_json())


def test_glm_finite_numbers_are_untouched() -> None:
    parsed = _glm(_pair("x", "1e300") + _pair("y", "-2.5"))
    assert parsed.tool_calls[0].arguments == {"x": 1e300, "y": -2.5}
    assert parsed.problems == []


def test_hermes_duplicate_key_and_non_finite_number_are_reported() -> None:
    text = '<tool_call>\n{"name": "f", "arguments": {"n": 1, "n": 2, "big": 1e999}}\n</tool_call>'
    parsed = hermes.parse(text)
    call = parsed.tool_calls[0]
    assert call.arguments == {"n": 2, "big": "1e999"}
    assert _strict(call.arguments_json()) == {"n": 2, "big": "1e999"}
    assert sorted(p.kind for p in parsed.problems) == [
        "duplicate_argument",
        "invalid_argument_value",
    ]


def test_hermes_nan_and_infinity_are_not_json() -> None:
    parsed = hermes.parse('<tool_call>\n{"name": "f", "arguments": {"n": NaN}}\n</tool_call>')
    assert parsed.tool_calls == []
    assert [p.kind for p in parsed.problems] == ["malformed_arguments"]


def test_the_wire_form_of_a_call_is_always_json() -> None:
    call = ToolCall(name="f", arguments={"a": math.inf, "b": [math.nan], "c": 1.5})
    assert _strict(call.arguments_json()) == {"a": "inf", "b": ["nan"], "c": 1.5}
