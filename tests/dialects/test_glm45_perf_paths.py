"""The whole-text scan reads damaged calls itself (``damaged_calls.py``): cut off by the end of
the output, a key without a value, stray text between the pairs. It must give exactly what the
general state machine (``parse_general``) gives, on every such text."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentkit.dialects.glm45 import STOP_TOKENS, ToolSchemas, format_assistant, parse
from agentkit.dialects.glm45.common_shapes import parse_common
from agentkit.dialects.glm45.parse import parse_general, parse_plain

PROPERTIES: dict[str, Any] = {
    "s": {"type": "string"},
    "i": {"type": "integer"},
    "o": {"type": "object"},
    "z": {},
}
TOOLS: list[dict[str, Any]] = [
    {"type": "function", "function": {"name": "act", "parameters": {"properties": PROPERTIES}}},
    {"type": "function", "function": {"name": "noop", "parameters": {"type": "object"}}},
]

_word = st.lists(st.sampled_from(["a", " ", "\n", "北", "<", "1", '"', "\\", "n", "{"]), max_size=8)
_text = _word.map("".join)
_arguments = st.fixed_dictionaries(
    {},
    optional={
        "s": _text,
        "i": st.integers(),
        "o": st.dictionaries(_text, st.integers()),
        "z": _text,
    },
)
_call = st.tuples(st.sampled_from(["act", "noop", "other"]), _arguments)


@st.composite
def turns(draw: st.DrawFn) -> tuple[str, bool]:
    """A turn with calls, as the template writes it, and its thinking flag."""
    thinking = draw(st.booleans())
    text = format_assistant(
        draw(_text) if thinking else None,
        draw(_text),
        draw(st.lists(_call, min_size=1, max_size=3)),
        thinking=thinking,
    )
    return text, thinking


def _agrees(text: str, thinking: bool, tools: list[dict[str, Any]] | None) -> None:
    general = parse_general(text, tools, thinking=thinking)
    assert parse(text, tools, thinking=thinking) == general
    scanned = parse_common(text, tools, thinking=thinking, damaged=True)
    assert scanned is None or scanned == general
    calls = [(call.name, call.arguments, call.raw) for call in general.tool_calls]
    plain = (general.reasoning, general.content, calls, general.problems, general.stop)
    assert parse_plain(text, tools, thinking=thinking) == plain


@settings(max_examples=300, deadline=None)
@given(turn=turns(), cut=st.floats(0, 1), stop=st.sampled_from(["", *STOP_TOKENS]))
def test_a_turn_cut_off_anywhere_gives_the_general_result(
    turn: tuple[str, bool], cut: float, stop: str
) -> None:
    text, thinking = turn
    opening = text.index("<tool_call>")
    at = opening + round(cut * (len(text) - opening))
    _agrees(text[:at] + stop, thinking, TOOLS)
    _agrees(text[:at] + stop, thinking, None)


_DAMAGE = [
    "stray",
    "\\n",
    "<arg_key>k</arg_key>",
    "<arg_key>",
    "</arg_key>",
    "<arg_value>",
    "</arg_value>",
    "</tool_call>",
    "<tool_call>",
    "\\",
    "<",
    "\n",
]


@settings(max_examples=400, deadline=None)
@given(
    turn=turns(),
    edits=st.lists(st.tuples(st.floats(0, 1), st.sampled_from(_DAMAGE), st.booleans()), max_size=3),
    with_tools=st.booleans(),
)
def test_damage_inside_calls_gives_the_general_result(
    turn: tuple[str, bool], edits: list[tuple[float, str, bool]], with_tools: bool
) -> None:
    text, thinking = turn
    opening = text.index("<tool_call>")
    for where, piece, insert in edits:
        at = opening + round(where * (len(text) - opening))
        text = text[:at] + piece + text[at:] if insert else text[:at] + text[at + len(piece) :]
    _agrees(text, thinking, TOOLS if with_tools else None)


_READ_BY_THE_SCAN = [  # damaged shapes the scan reads, with the problems they carry
    (
        "<think></think>text<tool_call>act\n<arg_key>s</arg_key>\n<arg_value>cut",
        ["unclosed_tool_call"],
    ),
    (
        "<think></think><tool_call>act\n<arg_key>i</arg_key><arg_value>x</arg_value>",
        ["unclosed_tool_call", "invalid_argument_value"],
    ),
    ("<think></think><tool_call>act", ["unclosed_tool_call"]),
    ("<think></think><tool_call>act\n<arg_key>s", ["unclosed_tool_call"]),
    (
        "<think></think><tool_call>other\n<arg_key>s</arg_key>\n<arg_val",
        ["unknown_tool", "unclosed_tool_call"],
    ),
    (
        "<think></think><tool_call>act\nstray<arg_key>s</arg_key><arg_value>x</arg_value></tool_call>",
        ["malformed_arguments"],
    ),
    ("<think></think><tool_call>act\n<arg_key>s</arg_key>\n</tool_call>", ["malformed_arguments"]),
    (
        "<think></think><tool_call>act\n<arg_key>s</arg_key> junk <arg_value>x</arg_value>"
        "<arg_key>i</arg_key><arg_key>z</arg_key><arg_value>1</arg_value></tool_call>",
        ["malformed_arguments", "malformed_arguments"],
    ),
    (
        "<think></think><tool_call>a\\b\n</tool_call>after",
        ["unknown_tool", "text_after_tool_calls"],
    ),
]


@pytest.mark.parametrize(("text", "kinds"), _READ_BY_THE_SCAN)
def test_damaged_calls_are_read_by_the_scan(text: str, kinds: list[str]) -> None:
    scanned = parse_common(text, ToolSchemas(TOOLS), thinking=True, damaged=True)
    assert scanned is not None
    assert sorted(problem.kind for problem in scanned.problems) == sorted(kinds)
    assert scanned == parse_general(text, TOOLS, thinking=True)


def test_a_cut_off_call_keeps_its_text_as_content() -> None:
    text = "<think>r</think>Let me look.\n<tool_call>act\n<arg_key>s</arg_key>\n<arg_value>half  "
    parsed = parse(text + "<|user|>", TOOLS)
    assert parsed.content == "Let me look.\n" + text[text.index("<tool_call>") :].rstrip()
    assert parsed.tool_calls == []
    assert [(p.kind, p.call_index) for p in parsed.problems] == [("unclosed_tool_call", 0)]
    assert parsed.stop == "<|user|>"


@pytest.mark.parametrize(
    "text",
    [
        "<think></think><tool_call>\n</tool_call>",  # no name: the state machine's bad call
        "<think>r<tool_call>act\n</tool_call>",  # a call inside the reasoning
    ],
)
def test_what_the_scan_leaves_to_the_state_machine(text: str) -> None:
    assert parse_common(text, TOOLS, thinking=True, damaged=True) is None
    assert parse(text, TOOLS) == parse_general(text, TOOLS)


def test_tools_given_as_a_list_or_compiled_scan_alike() -> None:
    text = "<think></think><tool_call>act\n<arg_key>i</arg_key>\n<arg_value>7</arg_value>\n</tool_call>"
    listed = parse_common(text, TOOLS, thinking=True)
    assert listed is not None
    assert listed.tool_calls[0].arguments == {"i": 7}
    assert listed == parse_common(text, ToolSchemas.compiled(TOOLS), thinking=True)
