"""The GLM-4.5 parser's fast paths give exactly what its general paths give.

- ``parse`` reads common shapes in one forward scan (``common_shapes.py``) and falls back to the
  state machine (``parse_general``) on anything else: both must agree on every text.
- ``StreamParser.feed`` takes ``<``-free text whole and holds a split tag without rescanning:
  per chunk it must emit the very deltas the state machine alone emits.
- Argument typing shortcuts (plain integers, booleans) and the scalar JSON writer must equal the
  general decoding and ``json.dumps``.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentkit.dialects.glm45 import STOP_TOKENS, StreamDelta, StreamParser, format_assistant, parse
from agentkit.dialects.glm45.common_shapes import parse_common
from agentkit.dialects.glm45.parse import parse_general, parse_plain
from agentkit.dialects.glm45.results import Parsed
from agentkit.dialects.glm45.typing_ import (
    NOT_DECODED,
    ToolSchemas,
    decode_json,
    decode_typed,
    decode_without_shortcuts,
    infer_type,
    json_text,
)

PROPERTIES: dict[str, Any] = {
    "s": {"type": "string"},
    "i": {"type": "integer"},
    "n": {"type": "number"},
    "b": {"type": "boolean"},
    "o": {"type": "object"},
    "a": {"type": "array", "items": {"type": "integer"}},
    "e": {"enum": ["x", "y"]},
    "u": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    "z": {},
}
TOOLS: list[dict[str, Any]] = [
    {"type": "function", "function": {"name": "act", "parameters": {"properties": PROPERTIES}}},
    {"type": "function", "function": {"name": "noop", "parameters": {"type": "object"}}},
]

# No letters that could spell a tag or a stop token; Unicode spaces that ``strip`` strips.
_CHARS = [
    "a",
    " ",
    "\n",
    "\t",
    "北",
    "<",
    ">",
    "/",
    "1",
    "-",
    '"',
    "{",
    "\\",
    "n",
    "\u3000",
    "\x85",
]
_text = st.lists(st.sampled_from(_CHARS), max_size=12).map("".join)
_json_scalar = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _text
_json = st.recursive(
    _json_scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=6,
)
_arguments = st.fixed_dictionaries(
    {},
    optional={
        "s": _text,
        "i": st.integers(),
        "n": st.integers() | st.floats(allow_nan=False, allow_infinity=False),
        "b": st.booleans(),
        "o": st.dictionaries(_text, _json, max_size=2),
        "a": st.lists(st.integers(), max_size=3),
        "e": st.sampled_from(["x", "y", "w"]),
        "u": _text | st.none(),
        "z": _json,
    },
)
_call = st.tuples(st.sampled_from(["act", "act", "noop", "other"]), _arguments)
_stop = st.sampled_from([*STOP_TOKENS, ""])
_space = st.lists(st.sampled_from([" ", "\n", "\t", "\u3000", "\x85", "\x1f"]), max_size=3).map(
    "".join
)


@st.composite
def well_formed(draw: st.DrawFn) -> tuple[str, bool]:
    """A turn as the template writes it (what the fast path is for), and its thinking flag."""
    thinking = draw(st.booleans())
    reasoning = draw(_text) if thinking else None
    text = format_assistant(
        reasoning, draw(_text), draw(st.lists(_call, max_size=3)), thinking=thinking
    )
    return draw(_space) + text + draw(_stop), thinking


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
    "\\n",
    "\n",
    "x",
    " ",
]


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bool]:
    """A well-formed turn with a few insertions and deletions: mostly not well-formed."""
    text, thinking = draw(well_formed())
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        if draw(st.booleans()):
            text = text[:at] + draw(st.sampled_from(_MARKUP)) + text[at:]
        else:
            text = text[:at] + text[at + draw(st.integers(1, 12)) :]
    return text, thinking


@settings(max_examples=300, deadline=None)
@given(turn=well_formed(), with_tools=st.booleans())
def test_well_formed_turns_take_the_fast_path_with_the_general_result(
    turn: tuple[str, bool], with_tools: bool
) -> None:
    text, thinking = turn
    tools = TOOLS if with_tools else None
    fast = parse_common(text, ToolSchemas(tools), thinking=thinking)
    assert fast is not None
    assert fast == parse_general(text, tools, thinking=thinking)
    assert parse_plain(text, tools, thinking=thinking) == plain_values(fast)


@settings(max_examples=400, deadline=None)
@given(turn=mutated(), with_tools=st.booleans())
def test_damaged_turns_give_the_general_result(turn: tuple[str, bool], with_tools: bool) -> None:
    text, thinking = turn
    tools = TOOLS if with_tools else None
    general = parse_general(text, tools, thinking=thinking)
    assert parse(text, tools, thinking=thinking) == general
    assert parse_plain(text, tools, thinking=thinking) == plain_values(general)


def plain_values(parsed: Parsed) -> tuple[Any, ...]:
    """What ``parse_plain`` gives for a parse: its values, each call as (name, args, raw)."""
    calls = [(call.name, call.arguments, call.raw) for call in parsed.tool_calls]
    return parsed.reasoning, parsed.content, calls, parsed.problems, parsed.stop


def token_chunks(text: str, rng: random.Random) -> list[str]:
    """``text`` cut into pieces of 1-8 characters, the size of model tokens."""
    chunks, at = [], 0
    while at < len(text):
        step = rng.randint(1, 8)
        chunks.append(text[at : at + step])
        at += step
    return chunks


COMPILED = ToolSchemas.compiled(TOOLS)  # shared by every example below: lookups carry over


@settings(max_examples=300, deadline=None)
@given(turn=st.one_of(well_formed(), mutated()), rng=st.randoms(use_true_random=False))
def test_tools_compiled_once_give_what_the_tool_list_gives(
    turn: tuple[str, bool], rng: random.Random
) -> None:
    text, thinking = turn
    expected = parse_general(text, TOOLS, thinking=thinking)
    assert parse(text, COMPILED, thinking=thinking) == expected
    parser = StreamParser(COMPILED, thinking=thinking)
    for chunk in token_chunks(text, rng):
        parser.feed(chunk)
    parser.close()
    assert parser.result() == expected


_HANDLED = [  # problems the fast path reports itself
    "plain answer, no think block<|user|>",
    "\n<think>r</think>\n<tool_call>other\n</tool_call>",
    "<think></think><tool_call>act\n<arg_key>i</arg_key>\n<arg_value>ten</arg_value>\n</tool_call>",
    "<think></think><tool_call>act\n<arg_key>s</arg_key><arg_value>1</arg_value>"
    "<arg_key>s</arg_key><arg_value>2</arg_value></tool_call>",
    "<think></think><tool_call>noop\n</tool_call>then some text<|observation|>",
    "<think></think><tool_call>act\\n<arg_key>z</arg_key>\\n<arg_value>1e999</arg_value>"
    "\\n</tool_call>",
    "\n<think>never closed<|user|>",
    "<think></think><tool_call>act<arg_key>s</arg_key><arg_value>x</arg_value></tool_call>",
]
_FALLBACK = [  # shapes only the general path reads
    "<think>r<tool_call>act\n</tool_call>",
    "<think>r<tool_call>act\n</tool_call> no </think>",
    "<think></think><tool_call>act\n<arg_key>s</arg_key>\n<arg_value>cut",
    "<think></think><tool_call>\n</tool_call>",
    "<think></think><tool_call>act\nstray<arg_key>s</arg_key><arg_value>x</arg_value></tool_call>",
    "<think></think><tool_call>act\n<arg_key>s</arg_key>\n</tool_call>",
    "<think></think><tool_call>a\\b\n</tool_call>",
]


@pytest.mark.parametrize("text", _HANDLED)
def test_problems_the_fast_path_reports_match_the_general_path(text: str) -> None:
    fast = parse_common(text, ToolSchemas(TOOLS), thinking=True)
    assert fast is not None and fast.problems
    assert fast == parse_general(text, TOOLS, thinking=True)


@pytest.mark.parametrize("text", _FALLBACK)
def test_unusual_shapes_fall_back_to_the_general_path(text: str) -> None:
    assert parse_common(text, ToolSchemas(TOOLS), thinking=True) is None
    result = parse(text, TOOLS, thinking=True)
    assert result.problems and result == parse_general(text, TOOLS, thinking=True)


class GeneralStreamParser(StreamParser):
    """``StreamParser`` with every chunk run through the state machine (no fast path)."""

    def feed(self, chunk: str) -> list[StreamDelta]:
        if self._closed:
            raise RuntimeError("feed() after close()")
        self._buf += chunk
        self._process(final=False)
        return self._take()


@settings(max_examples=400, deadline=None)
@given(rng=st.randoms(use_true_random=False), turn=st.one_of(well_formed(), mutated()))
def test_streaming_fast_path_emits_the_general_deltas(
    rng: random.Random, turn: tuple[str, bool]
) -> None:
    text, thinking = turn
    tools = TOOLS if rng.random() < 0.5 else None
    fast = StreamParser(tools, thinking=thinking)
    general = GeneralStreamParser(tools, thinking=thinking)
    for chunk in token_chunks(text, rng):
        assert fast.feed(chunk) == general.feed(chunk)
    assert fast.close() == general.close()
    assert fast.result() == general.result() == parse_general(text, tools, thinking=thinking)


_RAW = st.one_of(
    st.integers().map(str),
    st.integers(-(10**20), 10**20).map(lambda i: f"{i:+d}"),
    st.sampled_from(["0", "-0", "00", "01", "-01", "1e3", "1.0", " 1", "1 ", "١", "²", "true"]),
    st.sampled_from(["false", "True", "null", "tru", "'x'", '"x"', "[1]", "{}", "1e999", ""]),
    st.text(alphabet="0123456789-+.etruefalsn ", max_size=8),
)


@settings(max_examples=500, deadline=None)
@given(raw=_RAW, key=st.sampled_from(sorted(PROPERTIES)))
def test_typing_shortcuts_equal_the_general_decoding(raw: str, key: str) -> None:
    schema = PROPERTIES[key]
    expected = infer_type(schema)
    fast = decode_typed(raw, schema, expected)
    general = decode_without_shortcuts(raw, schema, expected)
    assert fast == general
    assert [type(v) for v in fast] == [type(v) for v in general]  # 1 == True == 1.0


@settings(max_examples=300, deadline=None)
@given(value=_json | st.floats())
def test_json_text_is_json_dumps(value: Any) -> None:
    assert json_text(value) == json.dumps(value, ensure_ascii=False)


def _reject(name: str) -> Any:
    raise ValueError(name)


def reference_decode(raw: str) -> Any:
    """The two JSON strategies written plainly with ``json.loads`` (what ``decode_json`` does
    without raising where it need not)."""
    try:
        return json.loads(raw, parse_constant=_reject)
    except (ValueError, RecursionError):
        pass
    try:
        inner = json.loads('{"v": "' + raw + '"}', parse_constant=_reject)["v"]
        return json.loads(inner, parse_constant=_reject)
    except (ValueError, KeyError, TypeError, RecursionError):
        return NOT_DECODED


_JSONISH = st.one_of(
    _RAW,
    _json.map(json.dumps),
    _json.map(lambda v: json.dumps(json.dumps(v))[1:-1]),  # escaped, as models sometimes write
    st.text(alphabet=' \t\n\r\x00\ufeff"\\/{}[]:,-+.0123456789eEaflsrtunNIiy', max_size=12),
)


@settings(max_examples=600, deadline=None)
@given(raw=_JSONISH)
def test_json_decoding_equals_json_loads(raw: str) -> None:
    decoded, expected = decode_json(raw), reference_decode(raw)
    assert decoded == expected
    assert type(decoded) is type(expected)
