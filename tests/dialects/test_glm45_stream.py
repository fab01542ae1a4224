"""StreamParser: any chunking gives parse()'s result, and the deltas add up to it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentkit.dialects.glm45 import (
    STOP_TOKENS,
    ContentDelta,
    Parsed,
    ReasoningDelta,
    StreamDelta,
    StreamParser,
    ToolCallArgumentsDelta,
    ToolCallEnd,
    ToolCallStart,
    format_assistant,
    parse,
)

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "act",
            "parameters": {
                "type": "object",
                "properties": {
                    "s": {"type": "string"},
                    "i": {"type": "integer"},
                    "o": {"type": "object"},
                    "b": {"type": "boolean"},
                },
            },
        },
    }
]

_MARKUP = [
    "<think>",
    "</think>",
    "<tool_call>",
    "</tool_call>",
    "<arg_key>",
    "</arg_key>",
    "<arg_value>",
    "</arg_value>",
    *STOP_TOKENS,
    "<tool_",
    "</arg",
    "<|",
    "<",
    "\\n",
]
_WORDS = ["act", "s", "i", "o", "b", "x", "42", "true", '{"k": 1}', '"q"', " ", "\n", "北", "zz"]
fragments = st.lists(st.sampled_from(_MARKUP + _WORDS + _WORDS), max_size=25).map("".join)

_text = st.lists(st.sampled_from(["a", " ", "\n", "北", "<", "1", '"', "{"]), max_size=10).map(
    "".join
)
_args = st.fixed_dictionaries(
    {},
    optional={
        "s": _text,
        "i": st.integers(),
        "o": st.dictionaries(_text, st.integers() | _text, max_size=2),
        "b": st.booleans(),
    },
)
well_formed = st.builds(
    lambda r, c, calls, stop: format_assistant(r, c, [("act", a) for a in calls]) + stop,
    _text,
    _text,
    st.lists(_args, max_size=3),
    st.sampled_from([*STOP_TOKENS, ""]),
)
outputs = st.one_of(well_formed, fragments, st.builds(str.__add__, well_formed, fragments))


def stream(
    text: str, cuts: list[int], *, tools: Any = TOOLS, thinking: bool = True
) -> tuple[list[StreamDelta], Parsed]:
    parser = StreamParser(tools, thinking=thinking)
    deltas: list[StreamDelta] = []
    start = 0
    for cut in sorted(set(cuts)):
        deltas += parser.feed(text[start:cut])
        start = cut
    deltas += parser.feed(text[start:])
    deltas += parser.close()
    return deltas, parser.result()


def check_deltas(deltas: list[StreamDelta], result: Parsed) -> None:
    assert "".join(d.text for d in deltas if isinstance(d, ReasoningDelta)) == (
        result.reasoning or ""
    )
    assert "".join(d.text for d in deltas if isinstance(d, ContentDelta)) == result.content
    ended = [d.call for d in deltas if isinstance(d, ToolCallEnd)]
    assert ended == result.tool_calls
    started = {d.index: d.name for d in deltas if isinstance(d, ToolCallStart)}
    for call in ended:
        assert started[call.index] == call.name
        fragments = "".join(
            d.text
            for d in deltas
            if isinstance(d, ToolCallArgumentsDelta) and d.index == call.index
        )
        assert json.loads(fragments) == call.arguments
    for i, delta in enumerate(deltas):  # a call's start comes before its arguments and end
        if isinstance(delta, ToolCallArgumentsDelta | ToolCallEnd):
            assert any(isinstance(d, ToolCallStart) and d.index == delta.index for d in deltas[:i])


@settings(max_examples=400, deadline=None)
@given(data=st.data(), text=outputs, thinking=st.booleans(), with_tools=st.booleans())
def test_any_chunking_gives_the_parse_result(
    data: st.DataObject, text: str, thinking: bool, with_tools: bool
) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(text)), max_size=12))
    tools = TOOLS if with_tools else None
    deltas, result = stream(text, cuts, tools=tools, thinking=thinking)
    assert result == parse(text, tools, thinking=thinking)
    check_deltas(deltas, result)


@pytest.mark.parametrize("thinking", [True, False])
def test_character_by_character(thinking: bool) -> None:
    text = format_assistant(
        "plan" if thinking else None,
        "Sure.",
        [("act", {"s": "a b", "i": 3}), ("act", {})],
        thinking=thinking,
    )
    text += "<|observation|>"
    deltas, result = stream(text, list(range(len(text))), thinking=thinking)
    assert result == parse(text, TOOLS, thinking=thinking)
    assert result.problems == []
    check_deltas(deltas, result)
    calls = [d for d in deltas if not isinstance(d, ReasoningDelta | ContentDelta)]
    assert calls[0] == ToolCallStart(0, "act")
    # the string-typed value streams character by character; the integer comes whole
    assert [d.text for d in calls if isinstance(d, ToolCallArgumentsDelta) and d.index == 0] == [
        '{"s": "',
        "a",
        " ",
        "b",
        '"',
        ', "i": 3',
        "}",
    ]
    assert [type(d).__name__ for d in calls[-4:]] == [
        "ToolCallEnd",
        "ToolCallStart",
        "ToolCallArgumentsDelta",
        "ToolCallEnd",
    ]
    assert calls[-2] == ToolCallArgumentsDelta(1, "{}")


def test_string_value_with_escapes_streams_as_valid_json() -> None:
    parser = StreamParser(TOOLS)
    deltas = parser.feed(
        '<think></think>\n<tool_call>act\n<arg_key>s</arg_key>\n<arg_value>say "hi"\\'
    )
    deltas += parser.feed("\n\tend</arg_value>\n</tool_call>")
    deltas += parser.close()
    text = "".join(d.text for d in deltas if isinstance(d, ToolCallArgumentsDelta))
    assert json.loads(text) == {"s": 'say "hi"\\\n\tend'}
    assert parser.result().tool_calls[0].arguments == {"s": 'say "hi"\\\n\tend'}


def test_call_start_streams_before_the_call_closes() -> None:
    parser = StreamParser(TOOLS)
    deltas = parser.feed(
        "<think>r</think>\nok\n<tool_call>act\n<arg_key>i</arg_key>\n<arg_value>7</arg_value>"
    )
    assert ReasoningDelta("r") in deltas
    assert ContentDelta("ok") in deltas
    assert ToolCallStart(0, "act") in deltas
    assert ToolCallArgumentsDelta(0, '{"i": 7') in deltas
    assert not any(isinstance(d, ToolCallEnd) for d in deltas)
    end = parser.feed("\n</tool_call>")
    assert [type(d) for d in end] == [ToolCallArgumentsDelta, ToolCallEnd]


def test_stop_token_is_held_until_close() -> None:
    parser = StreamParser()
    first = parser.feed("<think></think>\nDone.<|user|>")
    assert "".join(d.text for d in first if isinstance(d, ContentDelta)) == "Done."
    assert parser.close() == []
    assert parser.result().stop == "<|user|>"


def test_unclosed_call_text_arrives_as_content_at_close() -> None:
    parser = StreamParser(TOOLS)
    early = parser.feed("<think></think>\n<tool_call>act\n<arg_key>s</arg_key>\n<arg_value>abc")
    assert ToolCallStart(0, "act") in early
    late = parser.close()
    assert late == [ContentDelta("<tool_call>act\n<arg_key>s</arg_key>\n<arg_value>abc")]
    assert [p.kind for p in parser.result().problems] == ["unclosed_tool_call"]


def test_misuse_is_an_error() -> None:
    parser = StreamParser()
    with pytest.raises(RuntimeError):
        parser.result()
    parser.close()
    with pytest.raises(RuntimeError):
        parser.feed("x")
    assert parser.close() == []
