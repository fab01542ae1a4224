"""Whole-text reading of a damaged ``<tool_call>``, with the result the general state machine
(``stream.py``) gives, in one forward scan of ``str.find`` calls.

``common_shapes.py`` reads well-formed calls; ``parse`` hands it this reader for the calls it
cannot read: a call cut off by the end of the output (``max_tokens``), a key without a value,
stray text between the pairs, a name with a backslash. A call without a name (and so anything
the state machine treats as a bad call) is left to the state machine: ``read_damaged_call``
gives None. ``tests/dialects/test_glm45_perf_paths.py`` checks the agreement on damaged turns.
"""

from __future__ import annotations

from typing import Final

from . import problems
from .markers import earliest
from .results import ParsedToolCall, Problem, built_call
from .tokens import CALL_CLOSE, CALL_OPEN, KEY_CLOSE, KEY_OPEN, VALUE_CLOSE, VALUE_OPEN
from .typing_ import ToolSchemas, decode_typed

_LITERAL_NEWLINE = "\\n"
_NAME_ENDS = ("\n", _LITERAL_NEWLINE, "<")
_IN_BODY = (KEY_OPEN, CALL_CLOSE)
_BEFORE_VALUE = (VALUE_OPEN, CALL_CLOSE, KEY_OPEN)


class Unclosed:
    """The type of ``UNCLOSED``: the call runs on to the end of the output."""

    __slots__ = ()


UNCLOSED: Final = Unclosed()


class _Call:
    """What is known of the call being read: its name, index, arguments and problems."""

    __slots__ = ("arguments", "found", "index", "name", "schemas", "stray_reported")

    def __init__(self, name: str, index: int, schemas: ToolSchemas, found: list[Problem]) -> None:
        self.name = name
        self.index = index
        self.schemas = schemas
        self.found = found
        self.arguments: dict[str, object] = {}
        self.stray_reported = False

    def gap(self, text: str, where: str) -> None:
        """Report the first stray text of the call (literal ``\\n`` and whitespace are not)."""
        stray = text.replace(_LITERAL_NEWLINE, "").strip()
        if stray and not self.stray_reported:
            self.stray_reported = True
            self.found.append(problems.stray_text(self.name, where, stray, self.index))

    def value(self, key: str, raw: str) -> None:
        schema, expected = self.schemas.argument_type(self.name, key)
        value, issue = decode_typed(raw, schema, expected)
        if issue is not None:
            self.found.append(problems.invalid_value(self.name, key, issue, self.index))
        if key in self.arguments:
            self.found.append(problems.duplicate_argument(self.name, key, self.index))
        self.arguments[key] = value


def read_damaged_call(
    text: str, start: int, end: int, schemas: ToolSchemas, index: int, found: list[Problem]
) -> ParsedToolCall | Unclosed | None:
    """The call that starts at ``start`` (its ``<tool_call>``), ``UNCLOSED`` when the text ends
    inside it, or None for a call without a name. Problems go to ``found`` as they arise."""
    at = start + len(CALL_OPEN)
    position, marker = earliest(text, _NAME_ENDS, at, end)
    if marker is None:
        return UNCLOSED  # cut off in the name: no name problems yet
    name = text[at:position].strip()
    if not name:
        return None
    if marker == "<":  # the "<" starts the tag read next
        found.append(problems.missing_name_newline(name, index))
        at = position
    else:
        at = position + len(marker)
    if schemas.given and not schemas.knows(name):
        found.append(problems.unknown_tool(name, index))
    call = _Call(name, index, schemas, found)
    closed = _read_body(text, at, end, call)
    if closed is None:
        return UNCLOSED
    return built_call(index, name, call.arguments, text[start:closed])


def _read_body(text: str, at: int, end: int, call: _Call) -> int | None:
    """Read the pairs from ``at`` to ``</tool_call>``: the position after it, or None when the
    text ends first."""
    while True:
        position, marker = earliest(text, _IN_BODY, at, end)
        if marker is None:
            return None  # text left in the body is never checked: the call is cut off
        call.gap(text[at:position], problems.STRAY_IN_BODY)
        if marker == CALL_CLOSE:
            return position + len(CALL_CLOSE)
        at = position + len(KEY_OPEN)
        while True:  # a key, then its value; a key without one is followed by the next key
            key_end = text.find(KEY_CLOSE, at, end)
            if key_end == -1:
                return None
            key = text[at:key_end].strip()
            at = key_end + len(KEY_CLOSE)
            position, marker = earliest(text, _BEFORE_VALUE, at, end)
            if marker is None:
                return None
            call.gap(text[at:position], problems.stray_before_value(key))
            at = position + len(marker)
            if marker == VALUE_OPEN:
                break
            call.found.append(problems.missing_value(call.name, key, call.index))
            if marker == CALL_CLOSE:
                return at
        value_end = text.find(VALUE_CLOSE, at, end)
        if value_end == -1:
            return None
        call.value(key, text[at:value_end])
        at = value_end + len(VALUE_CLOSE)
