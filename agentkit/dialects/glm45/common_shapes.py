"""Whole-text parse of the shapes models write nearly always, in one forward scan.

A turn of ``<think>…</think>``, text and well-formed ``<tool_call>`` blocks is read with
``str.find`` and anchored regex matches from a moving offset: no per-character loop, no deltas,
no copies of the rest of the text. The problems such a turn can carry (``missing_think``,
``unclosed_think``, ``missing_name_newline``, ``unknown_tool``, ``invalid_argument_value``,
``duplicate_argument``, ``text_after_tool_calls``) are reported here too. Anything else (an
unclosed call, stray text in a call, a key without a value, a call inside the reasoning, ...)
gives ``None`` and ``parse`` runs the general state machine of ``stream.py`` instead, which
gives the same result on everything this reads; ``tests/test_glm45_speed_paths.py`` checks that
on generated turns.
"""

from __future__ import annotations

import re

from . import problems
from .results import Parsed, ParsedToolCall, Problem
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

_CALL_OPEN_END = len(CALL_OPEN)
_KEY_OPEN_LEN = len(KEY_OPEN)
_KEY_CLOSE_LEN = len(KEY_CLOSE)
_VALUE_OPEN_LEN = len(VALUE_OPEN)
_VALUE_CLOSE_LEN = len(VALUE_CLOSE)
_CALL_CLOSE_LEN = len(CALL_CLOSE)


def parse_common(text: str, schemas: ToolSchemas, *, thinking: bool) -> Parsed | None:
    """The parse of ``text`` if it has a common shape, else None (see the module docstring)."""
    stop = None
    end = len(text)
    if text.endswith("|>"):
        for token in STOP_TOKENS:
            if text.endswith(token):
                stop, end = token, end - len(token)
                break
    found: list[Problem] = []
    at = _skip(_SPACE, text, 0, end)
    reasoning = None
    if text.startswith(THINK_OPEN, at, end):
        start = at + len(THINK_OPEN)
        close = text.find(THINK_CLOSE, start, end)
        if text.find(CALL_OPEN, start, end if close == -1 else close) != -1:
            return None  # a call inside the reasoning
        if close == -1:  # the output ended while thinking: all of it is reasoning
            found.append(problems.UNCLOSED_THINK)
            return Parsed(reasoning=text[start:end] or None, problems=found, stop=stop)
        reasoning = text[start:close] or None
        at = close + len(THINK_CLOSE)
    elif thinking and at < end:
        found.append(problems.MISSING_THINK)
    content: list[str] = []
    calls: list[ParsedToolCall] = []
    while True:
        opening = text.find(CALL_OPEN, at, end)
        segment = text[at : end if opening == -1 else opening].strip()
        if segment:
            if calls:
                found.append(problems.TEXT_AFTER_CALLS)
            content.append(segment)
        if opening == -1:
            break
        call = _call(text, opening, end, schemas, len(calls), found)
        if call is None:
            return None
        calls.append(call)
        at = opening + len(call.raw)
    return Parsed(
        reasoning=reasoning,
        content="\n".join(content),
        tool_calls=calls,
        problems=found,
        stop=stop,
    )


def _skip(pattern: re.Pattern[str], text: str, at: int, end: int) -> int:
    match = pattern.match(text, at, end)  # matches, maybe empty: both patterns end in ``*``
    return match.end() if match else at


def _call(
    text: str, start: int, end: int, schemas: ToolSchemas, index: int, found: list[Problem]
) -> ParsedToolCall | None:
    """The well-formed call that starts at ``start``, or None."""
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
    arguments: dict[str, object] = {}
    at = name_match.end()
    gap = _GAP.match
    while True:
        matched = gap(text, at, end)  # always matches (maybe empty), as below
        at = matched.end() if matched else at
        if text.startswith(CALL_CLOSE, at, end):
            at += _CALL_CLOSE_LEN
            return ParsedToolCall(index=index, name=name, arguments=arguments, raw=text[start:at])
        if not text.startswith(KEY_OPEN, at, end):
            return None
        key_end = text.find(KEY_CLOSE, at + _KEY_OPEN_LEN, end)
        if key_end == -1:
            return None
        key = text[at + _KEY_OPEN_LEN : key_end].strip()
        at = key_end + _KEY_CLOSE_LEN
        matched = gap(text, at, end)
        at = matched.end() if matched else at
        if not text.startswith(VALUE_OPEN, at, end):
            return None
        value_end = text.find(VALUE_CLOSE, at + _VALUE_OPEN_LEN, end)
        if value_end == -1:
            return None
        schema, expected = schemas.argument_type(name, key)
        value, issue = decode_typed(text[at + _VALUE_OPEN_LEN : value_end], schema, expected)
        if issue is not None:
            found.append(problems.invalid_value(name, key, issue, index))
        if key in arguments:
            found.append(problems.duplicate_argument(name, key, index))
        arguments[key] = value
        at = value_end + _VALUE_CLOSE_LEN
