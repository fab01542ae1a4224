"""Whole-text parse of the shapes models write nearly always, in one forward scan.

A turn of ``<think>…</think>``, text and well-formed ``<tool_call>`` blocks is read with
``str.find`` and anchored regex matches from a moving offset: no per-character loop, no deltas,
no copies of the rest of the text. The problems such a turn can carry (``missing_think``,
``unclosed_think``, ``missing_name_newline``, ``unknown_tool``, ``invalid_argument_value``,
``duplicate_argument``, ``text_after_tool_calls``) are reported here too. A call this scan
cannot read (cut off, stray text in it, a key without a value, ...) gives ``None``, unless
``damaged`` hands it to ``damaged_calls.py`` (as ``parse`` does); what neither reads (a call
inside the reasoning, a call without a name) gives ``None`` and ``parse`` runs the general state
machine of ``stream.py`` instead, which gives the same result on everything these read;
``tests/dialects/test_glm45_speed_paths.py`` and ``test_glm45_perf_paths.py`` check that on
generated turns.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from . import problems
from .damaged_calls import UNCLOSED, read_damaged_call
from .results import Parsed, ParsedToolCall, Problem, built_call, built_parsed
from .schema_cache import schemas_for
from .tokens import (
    CALL_CLOSE,
    CALL_OPEN,
    KEY_CLOSE,
    KEY_OPEN,
    STOP_TOKENS,
    THINK_CLOSE,
    THINK_OPEN,
    VALUE_CLOSE,
    VALUE_OPEN,
)
from .typing_ import ToolSchemas, decode_typed

_SPACE = re.compile(r"\s*")  # ``\s`` is what ``str.strip`` strips
_GAP = re.compile(r"(?:\s|\\n)*")  # whitespace and literal ``\n``: no stray text
_NAME = re.compile(r"([^<\n\\]*)(\n|\\n|(?=<))")  # the name, up to its newline (or a tag)
# One argument up to its value: a gap, the key up to the first ``</arg_key>``, a gap and
# ``<arg_value>``. The groups are atomic so that a key never runs on to a later ``</arg_key>``
# when what follows the first one does not fit (that text is not a common shape).
_ARGUMENT = re.compile(
    rf"(?:\s|\\n)*+{re.escape(KEY_OPEN)}(?>(.*?){re.escape(KEY_CLOSE)})"
    rf"(?:\s|\\n)*+{re.escape(VALUE_OPEN)}",
    re.S,
)

_CALL_OPEN_END = len(CALL_OPEN)
_THINK_OPEN_LEN = len(THINK_OPEN)
_THINK_CLOSE_LEN = len(THINK_CLOSE)
_VALUE_CLOSE_LEN = len(VALUE_CLOSE)
_CALL_CLOSE_LEN = len(CALL_CLOSE)
_NEWLINE_THINK = "\n" + THINK_OPEN


# A parse as plain values: reasoning, content, the calls as (name, arguments, raw markup) in
# order, the problems and the stop token (what ``Parsed`` holds, without building the models)
PlainCall = tuple[str, dict[str, Any], str]
Plain = tuple[str | None, str, list[PlainCall], list[Problem], str | None]


def parse_common(
    text: str,
    tools: ToolSchemas | Sequence[Mapping[str, Any]] | None,
    *,
    thinking: bool,
    damaged: bool = False,
) -> Parsed | None:
    """The parse of ``text`` if it has a common shape, else None (see the module docstring).

    With ``damaged``, calls this scan cannot read go to ``read_damaged_call`` (cut off, a key
    without a value, stray text, ...) rather than giving None. ``tools`` are read only when
    the text has a call.
    """
    plain = scan_common(text, tools, thinking=thinking, damaged=damaged)
    if plain is None:
        return None
    built: list[ParsedToolCall] = []
    for call in plain[2]:
        built.append(built_call(len(built), *call))
    return built_parsed(plain[0], plain[1], built, plain[3], plain[4])


def scan_common(
    text: str,
    tools: ToolSchemas | Sequence[Mapping[str, Any]] | None,
    *,
    thinking: bool,
    damaged: bool = False,
) -> Plain | None:
    """``parse_common`` as plain values (:data:`Plain`): for a caller that reads the parse
    once (token mode), without the ``Parsed`` and ``ParsedToolCall`` models."""
    stop = None
    end = len(text)
    if text.endswith("|>"):
        for token in STOP_TOKENS:
            if text.endswith(token):
                stop, end = token, end - len(token)
                break
    found: list[Problem] = []
    at = _start(text, end)
    reasoning = None
    if text.startswith(THINK_OPEN, at, end):
        start = at + _THINK_OPEN_LEN
        close = text.find(THINK_CLOSE, start, end)
        # the first call, found once: neither tag can start inside the other
        opening = text.find(CALL_OPEN, start, end)
        if opening != -1 and (close == -1 or opening < close):
            return None  # a call inside the reasoning
        if close == -1:  # the output ended while thinking: all of it is reasoning
            found.append(problems.UNCLOSED_THINK)
            return text[start:end] or None, "", [], found, stop
        reasoning = text[start:close] or None
        at = close + _THINK_CLOSE_LEN
    else:
        if thinking and at < end:
            found.append(problems.MISSING_THINK)
        opening = text.find(CALL_OPEN, at, end)
    if opening == -1:  # no calls: the rest is the content
        return reasoning, text[at:end].strip(), [], found, stop
    schemas = schemas_for(tools)
    segment = text[at:opening].strip()
    content = [segment] if segment else []
    calls: list[PlainCall] = []
    while opening != -1:
        index, known = len(calls), len(found)
        call = _call(text, opening, end, schemas, index, found)
        if call is None:
            if not damaged:
                return None
            del found[known:]  # what the scan reported of this call, read again below
            damaged_call = read_damaged_call(text, opening, end, schemas, index, found)
            if damaged_call is None:
                return None
            if damaged_call is UNCLOSED:  # the rest of the text is the call's, kept as content
                found.append(problems.unclosed_call(index))
                content.append(text[opening:end].rstrip())
                break
            assert isinstance(damaged_call, ParsedToolCall)
            call = damaged_call.name, damaged_call.arguments, damaged_call.raw
        calls.append(call)
        at = opening + len(call[2])
        opening = text.find(CALL_OPEN, at, end)
        segment = text[at : end if opening == -1 else opening].strip()
        if segment:
            found.append(problems.TEXT_AFTER_CALLS)
            content.append(segment)
    return reasoning, "\n".join(content), calls, found, stop


def _start(text: str, end: int) -> int:
    """Where the text starts after leading whitespace (usually at once: ``<think>`` or
    ``\\n<think>``)."""
    if text.startswith(THINK_OPEN):
        return 0
    if text.startswith(_NEWLINE_THINK):
        return 1
    match = _SPACE.match(text, 0, end)  # matches, maybe empty: the pattern ends in ``*``
    return match.end() if match else 0


def _call(
    text: str, start: int, end: int, schemas: ToolSchemas, index: int, found: list[Problem]
) -> PlainCall | None:
    """The well-formed call that starts at ``start`` (name, arguments, markup), or None."""
    name_match = _NAME.match(text, start + _CALL_OPEN_END, end)
    if name_match is None:
        return None
    name = name_match.group(1).strip()
    if not name:
        return None
    if not name_match.group(2):
        found.append(problems.missing_name_newline(name, index))
    if schemas.given and not schemas.knows(name):
        found.append(problems.unknown_tool(name, index))
    types = schemas.types_of(name)
    arguments: dict[str, object] = {}
    at = name_match.end()
    argument = _ARGUMENT.match
    while (matched := argument(text, at, end)) is not None:
        key = matched.group(1).strip()
        value_start = matched.end()
        value_end = text.find(VALUE_CLOSE, value_start, end)
        if value_end == -1:
            return None
        raw = text[value_start:value_end]
        typed = types.get(key)
        schema, expected = typed if typed is not None else schemas.argument_type(name, key)
        if expected == "string":
            value: object = raw
        else:
            value, issue = decode_typed(raw, schema, expected)
            if issue is not None:
                found.append(problems.invalid_value(name, key, issue, index))
        if key in arguments:
            found.append(problems.duplicate_argument(name, key, index))
        arguments[key] = value
        at = value_end + _VALUE_CLOSE_LEN
    gap = _GAP.match(text, at, end)  # matches, maybe empty
    at = gap.end() if gap else at
    if not text.startswith(CALL_CLOSE, at, end):
        return None
    at += _CALL_CLOSE_LEN
    return name, arguments, text[start:at]
