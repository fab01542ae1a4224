"""parse(): SGLang-compatible results on well-formed output, reported problems on malformed output,
and round trips with format_assistant and render."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentkit.dialects.glm45 import STOP_TOKENS, Parsed, format_assistant, parse, render


def _tool(name: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": name,
            "parameters": {"type": "object", "properties": properties},
        },
    }


TOOLS = [
    _tool(
        "typed",
        {
            "s": {"type": "string"},
            "i": {"type": "integer"},
            "n": {"type": "number"},
            "b": {"type": "boolean"},
            "o": {"type": "object"},
            "a": {"type": "array", "items": {"type": "string"}},
            "opt": {"type": ["integer", "null"]},
            "any": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "mixed": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
            "e": {"enum": [1, 2, 3]},
            "es": {"enum": ["x", "y"]},
            "nested": {"properties": {"x": {"type": "integer"}}},
            "all": {"allOf": [{"type": "integer"}]},
        },
    ),
    _tool("now", {}),
]


def call_text(name: str, *pairs: tuple[str, str]) -> str:
    body = "".join(f"<arg_key>{k}</arg_key>\n<arg_value>{v}</arg_value>\n" for k, v in pairs)
    return f"<tool_call>{name}\n{body}</tool_call>"


def one_value(key: str, raw: str) -> tuple[Any, Parsed]:
    parsed = parse("<think></think>\n" + call_text("typed", (key, raw)), TOOLS)
    assert len(parsed.tool_calls) == 1
    return parsed.tool_calls[0].arguments[key], parsed


# -- well-formed output: the same results as SGLang's glm45 parsers ------------------------------


def test_reasoning_content_and_call() -> None:
    text = (
        "\n<think>Need the tool.</think>\nLet me check.\n"
        + call_text("typed", ("s", "北京"), ("i", "2"))
        + "<|observation|>"
    )
    parsed = parse(text, TOOLS)
    assert parsed.reasoning == "Need the tool."
    assert parsed.content == "Let me check."
    assert [(c.index, c.name, c.arguments) for c in parsed.tool_calls] == [
        (0, "typed", {"s": "北京", "i": 2})
    ]
    assert parsed.tool_calls[0].raw == call_text("typed", ("s", "北京"), ("i", "2"))
    assert parsed.tool_calls[0].arguments_json() == '{"s": "北京", "i": 2}'
    assert parsed.stop == "<|observation|>"
    assert parsed.problems == []


@pytest.mark.parametrize(
    ("key", "raw", "expected"),
    [
        ("i", "3", 3),
        ("i", "3.0", 3.0),
        ("n", "2.5", 2.5),
        ("n", "7", 7),
        ("n", '"4.5"', 4.5),
        ("b", "true", True),
        ("b", "false", False),
        ("o", '{"a": [1, {"b": null}]}', {"a": [1, {"b": None}]}),
        ("a", '["x", "y"]', ["x", "y"]),
        ("opt", "5", 5),
        ("opt", "null", None),
        ("any", "null", None),
        ("mixed", "12", "12"),
        ("e", "2", 2),
        ("es", "x", "x"),
        ("nested", '{"x": 1}', {"x": 1}),
        ("all", "9", 9),
        ("s", "123_456", "123_456"),
        ("s", "\n  print('hi')\n", "\n  print('hi')\n"),
        ("unknown_key", "[1, 2]", [1, 2]),
        ("unknown_key", "Paris", "Paris"),
        ("b", "True", True),
    ],
)
def test_values_are_typed_by_schema(key: str, raw: str, expected: Any) -> None:
    value, parsed = one_value(key, raw)
    assert value == expected
    assert type(value) is type(expected)
    assert parsed.problems == []


@pytest.mark.parametrize("raw", ["true", "null", "123", '"Paris"', '{"a":1}', "a\\nb"])
def test_string_values_are_kept_verbatim(raw: str) -> None:
    # deliberate difference: SGLang gives "True"/"None" (old), strips quotes, reformats JSON.
    value, parsed = one_value("s", raw)
    assert value == raw
    assert parsed.problems == []


def test_several_calls_and_no_argument_call() -> None:
    text = "<think>r</think>\n" + call_text("now") + "\n" + call_text("typed", ("i", "1"))
    parsed = parse(text + "<|observation|>", TOOLS)
    assert [(c.index, c.name, c.arguments) for c in parsed.tool_calls] == [
        (0, "now", {}),
        (1, "typed", {"i": 1}),
    ]
    assert parsed.content == ""
    assert parsed.problems == []


def test_final_answer_content_is_stripped_and_stop_recorded() -> None:
    for stop in STOP_TOKENS:
        parsed = parse("\n<think>\nplan\n</think>\n\nThe answer is 4.\n" + stop, TOOLS)
        assert parsed.reasoning == "\nplan\n"
        assert parsed.content == "The answer is 4."
        assert parsed.stop == stop
        assert parsed.problems == []


def test_stop_token_only_at_the_very_end_counts() -> None:
    parsed = parse("<think></think>\nsay <|user|> please")
    assert parsed.content == "say <|user|> please"
    assert parsed.stop is None


def test_thinking_off_output_is_content() -> None:
    parsed = parse("\nHello there.<|user|>", thinking=False)
    assert (parsed.reasoning, parsed.content, parsed.stop, parsed.problems) == (
        None,
        "Hello there.",
        "<|user|>",
        [],
    )


def test_empty_reasoning_is_none() -> None:
    assert parse("<think></think>\nhi").reasoning is None


def test_empty_output() -> None:
    parsed = parse("<|endoftext|>")
    assert (parsed.reasoning, parsed.content, parsed.tool_calls, parsed.problems) == (
        None,
        "",
        [],
        [],
    )


def test_literal_backslash_n_after_name_is_accepted() -> None:
    parsed = parse(
        "<think></think>\n<tool_call>typed\\n<arg_key>i</arg_key>\\n<arg_value>4</arg_value>\\n</tool_call>",
        TOOLS,
    )
    assert [(c.name, c.arguments) for c in parsed.tool_calls] == [("typed", {"i": 4})]
    assert parsed.problems == []


# -- malformed output: nothing dropped, a problem reported ----------------------------------------


def kinds(parsed: Parsed) -> list[str]:
    return [p.kind for p in parsed.problems]


def test_unknown_tool_is_returned_with_a_problem() -> None:
    parsed = parse("<think></think>\n" + call_text("rm_rf", ("path", "/")), TOOLS)
    assert [(c.name, c.arguments) for c in parsed.tool_calls] == [("rm_rf", {"path": "/"})]
    assert kinds(parsed) == ["unknown_tool"]
    assert parsed.problems[0].call_index == 0


def test_without_tools_calls_are_parsed_untyped() -> None:
    parsed = parse("<think></think>\n" + call_text("anything", ("x", "5"), ("y", "hi")))
    assert [(c.name, c.arguments) for c in parsed.tool_calls] == [("anything", {"x": 5, "y": "hi"})]
    assert parsed.problems == []


def test_unclosed_tool_call_keeps_text_in_content() -> None:
    text = "<think>r</think>\nChecking.\n<tool_call>typed\n<arg_key>s</arg_key>\n<arg_value>Par"
    parsed = parse(text, TOOLS)
    assert parsed.tool_calls == []
    assert parsed.content == "Checking.\n<tool_call>typed\n<arg_key>s</arg_key>\n<arg_value>Par"
    assert kinds(parsed) == ["unclosed_tool_call"]


def test_missing_newline_after_name_is_parsed_leniently() -> None:
    parsed = parse("<think></think>\n<tool_call>now</tool_call>", TOOLS)
    assert [(c.name, c.arguments) for c in parsed.tool_calls] == [("now", {})]
    assert kinds(parsed) == ["missing_name_newline"]
    parsed = parse(
        "<think></think>\n<tool_call>typed<arg_key>i</arg_key><arg_value>1</arg_value></tool_call>",
        TOOLS,
    )
    assert [(c.name, c.arguments) for c in parsed.tool_calls] == [("typed", {"i": 1})]
    assert kinds(parsed) == ["missing_name_newline"]


@pytest.mark.parametrize(
    ("key", "raw"),
    [
        ("i", "three"),
        ("i", "2.5"),
        ("b", "yes"),
        ("o", "[1]"),
        ("a", "{}"),
        ("n", "NaN"),
        ("i", "null"),
    ],
)
def test_value_invalid_for_its_type_is_kept_raw(key: str, raw: str) -> None:
    value, parsed = one_value(key, raw)
    assert value == raw
    assert kinds(parsed) == ["invalid_argument_value"]
    assert key in parsed.problems[0].message


def test_text_after_calls_is_appended_to_content() -> None:
    text = "<think></think>\nFirst.\n" + call_text("now") + "\nAnd more text.  \n"
    parsed = parse(text, TOOLS)
    assert parsed.content == "First.\nAnd more text."
    assert len(parsed.tool_calls) == 1
    assert kinds(parsed) == ["text_after_tool_calls"]


def test_think_without_end_keeps_reasoning() -> None:
    parsed = parse("<think>still thinking", TOOLS)
    assert (parsed.reasoning, parsed.content) == ("still thinking", "")
    assert kinds(parsed) == ["unclosed_think"]


def test_tool_call_inside_unclosed_think_ends_reasoning() -> None:
    parsed = parse("<think>plan\n" + call_text("now"), TOOLS)
    assert parsed.reasoning == "plan\n"
    assert [c.name for c in parsed.tool_calls] == ["now"]
    assert kinds(parsed) == ["unclosed_think"]


def test_missing_think_keeps_the_answer_as_content() -> None:
    parsed = parse("The answer is 4.<|user|>", TOOLS)
    assert (parsed.reasoning, parsed.content) == (None, "The answer is 4.")
    assert kinds(parsed) == ["missing_think"]


def test_stray_text_in_a_call_is_reported() -> None:
    text = "<think></think>\n<tool_call>typed\noops<arg_key>i</arg_key>\n<arg_value>1</arg_value>\n</tool_call>"
    parsed = parse(text, TOOLS)
    assert parsed.tool_calls[0].arguments == {"i": 1}
    assert "oops" in parsed.tool_calls[0].raw
    assert kinds(parsed) == ["malformed_arguments"]


def test_key_without_value_is_reported() -> None:
    parsed = parse("<think></think>\n<tool_call>typed\n<arg_key>i</arg_key>\n</tool_call>", TOOLS)
    assert parsed.tool_calls[0].arguments == {}
    assert kinds(parsed) == ["malformed_arguments"]


def test_call_without_name_is_kept_as_content() -> None:
    text = (
        "<think></think>\n<tool_call>\n<arg_key>i</arg_key>\n<arg_value>1</arg_value>\n</tool_call>"
    )
    parsed = parse(text, TOOLS)
    assert parsed.tool_calls == []
    assert parsed.content == text.removeprefix("<think></think>\n")
    assert kinds(parsed) == ["missing_tool_name"]


# -- round trips -----------------------------------------------------------------------------------

_SAFE = st.sampled_from(["a", "Z", " ", "\n", "北", '"', "{", "}", "1", "<", ">", "\\", "/", "\t"])
safe_texts = st.lists(_SAFE, max_size=12).map("".join)
ROUND_TRIP_TOOL = _tool(
    "act",
    {
        "s": {"type": "string"},
        "i": {"type": "integer"},
        "n": {"type": "number"},
        "b": {"type": "boolean"},
        "o": {"type": "object"},
        "a": {"type": "array"},
        "opt": {"type": ["string", "null"]},
    },
)
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | safe_texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(safe_texts, inner, max_size=3),
    max_leaves=5,
)
typed_arguments = st.fixed_dictionaries(
    {},
    optional={
        "s": safe_texts,
        "i": st.integers(),
        "n": st.floats(allow_nan=False, allow_infinity=False) | st.integers(),
        "b": st.booleans(),
        "o": st.dictionaries(safe_texts, _json, max_size=3),
        "a": st.lists(_json, max_size=3),
        "opt": safe_texts,
    },
)
turns = st.tuples(
    safe_texts,
    safe_texts,
    st.lists(st.tuples(st.sampled_from(["act"]), typed_arguments), max_size=3),
)


def _expected(
    reasoning: str, content: str, calls: list[tuple[str, dict[str, Any]]]
) -> tuple[Any, ...]:
    return (reasoning.strip() or None, content.strip(), [(n, a) for n, a in calls])


@settings(max_examples=300, deadline=None)
@given(turn=turns, thinking=st.booleans(), stop=st.sampled_from([*STOP_TOKENS, ""]))
def test_format_assistant_round_trips(
    turn: tuple[str, str, list[tuple[str, dict[str, Any]]]], thinking: bool, stop: str
) -> None:
    reasoning, content, calls = turn
    if not thinking:
        reasoning = ""
    parsed = parse(
        format_assistant(reasoning, content, calls, thinking=thinking) + stop,
        [ROUND_TRIP_TOOL],
        thinking=thinking,
    )
    assert (
        parsed.reasoning,
        parsed.content,
        [(c.name, c.arguments) for c in parsed.tool_calls],
    ) == _expected(reasoning, content, calls)
    assert parsed.problems == []
    assert parsed.stop == (stop or None)


@settings(max_examples=200, deadline=None)
@given(turn=turns)
def test_parse_round_trips_rendered_assistant_turns(
    turn: tuple[str, str, list[tuple[str, dict[str, Any]]]],
) -> None:
    reasoning, content, calls = turn
    message = {
        "role": "assistant",
        "content": content,
        "reasoning_content": reasoning,
        "tool_calls": [
            {"type": "function", "function": {"name": n, "arguments": a}} for n, a in calls
        ],
    }
    prompt = render(
        [{"role": "user", "content": "go"}, message], [ROUND_TRIP_TOOL], add_generation_prompt=False
    )
    turn_text = prompt.rsplit("<|assistant|>", 1)[1]
    parsed = parse(turn_text, [ROUND_TRIP_TOOL])
    assert (
        parsed.reasoning,
        parsed.content,
        [(c.name, c.arguments) for c in parsed.tool_calls],
    ) == _expected(reasoning, content, calls)
    assert parsed.problems == []
