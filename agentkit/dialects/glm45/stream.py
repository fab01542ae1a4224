"""Incremental parser for raw GLM-4.5 output: one state machine serves streaming and ``parse``.

Text is consumed as it arrives; only a tail that may still turn into a tag (or a stop token at
the very end) is held back, so chunk boundaries anywhere, even inside tags, give the same result.
See ``parse.py`` for the output rules and the differences from SGLang's parsers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import IntEnum, auto
from json.encoder import encode_basestring
from typing import Any

from . import problems
from .deltas import (
    ContentDelta,
    ReasoningDelta,
    StreamDelta,
    ToolCallArgumentsDelta,
    ToolCallEnd,
    ToolCallStart,
)
from .markers import earliest
from .results import Parsed, ParsedToolCall, Problem, ProblemKind, built_call, built_parsed
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
from .typing_ import ToolSchemas, decode_typed, json_text

__all__ = [
    "ContentDelta",
    "ReasoningDelta",
    "StreamDelta",
    "StreamParser",
    "ToolCallArgumentsDelta",
    "ToolCallEnd",
    "ToolCallStart",
]

# ``json.dumps(text, ensure_ascii=False)`` builds an encoder per call; ``encode_basestring`` is
# what that encoder runs on a ``str``.
_escape = encode_basestring

_LITERAL_NEWLINE = "\\n"  # a backslash and an n, which SGLang also accepts as a separator


class _State(IntEnum):
    START = auto()
    REASONING = auto()
    CONTENT = auto()
    NAME = auto()
    BODY = auto()
    KEY = auto()
    WAIT_VALUE = auto()
    VALUE = auto()
    BAD_CALL = auto()


# Module-level names: reading a member off the enum class is slow in the hot loop.
_START = _State.START
_REASONING = _State.REASONING
_CONTENT = _State.CONTENT
_NAME = _State.NAME
_BODY = _State.BODY
_KEY = _State.KEY
_WAIT_VALUE = _State.WAIT_VALUE
_VALUE = _State.VALUE
_BAD_CALL = _State.BAD_CALL


_MARKERS: dict[_State, tuple[str, ...]] = {
    _REASONING: (THINK_CLOSE, CALL_OPEN),
    _CONTENT: (CALL_OPEN,),
    _NAME: ("\n", _LITERAL_NEWLINE, "<"),
    _BODY: (KEY_OPEN, CALL_CLOSE),
    _KEY: (KEY_CLOSE,),
    _WAIT_VALUE: (VALUE_OPEN, CALL_CLOSE, KEY_OPEN),
    _VALUE: (VALUE_CLOSE,),
    _BAD_CALL: (CALL_CLOSE,),
}
_CALL_STATES = frozenset({_NAME, _BODY, _KEY, _WAIT_VALUE, _VALUE, _BAD_CALL})


_PLAIN_STATES = frozenset(_MARKERS) - {_NAME}
"""States whose markers all start with ``<``, as do the stop tokens: text without a ``<`` in
them is plain text, whole."""


class _Tail:
    """Which suffixes of the unread text must wait: starts of ``candidates`` (or, with
    ``complete``, also whole candidates, e.g. a stop token that may be the last one)."""

    __slots__ = ("firsts", "single", "waiting", "window")

    def __init__(self, candidates: tuple[str, ...], *, complete: bool) -> None:
        self.window = max(len(c) for c in candidates) - (0 if complete else 1)
        self.firsts = frozenset(c[0] for c in candidates)
        self.single = next(iter(self.firsts)) if len(self.firsts) == 1 else None
        self.waiting = frozenset(
            c[:n] for c in candidates for n in range(1, len(c) + (1 if complete else 0))
        )

    def length(self, text: str, start: int, end: int) -> int:
        """Length of the longest suffix of ``text[start:end]`` that must wait."""
        begin = end - self.window
        if begin < start:
            begin = start
        waiting, single = self.waiting, self.single
        if single is not None:  # usually "<": jump from one to the next
            at = text.find(single, begin, end)
            while at != -1:
                if text[at:end] in waiting:
                    return end - at
                at = text.find(single, at + 1, end)
            return 0
        firsts = self.firsts
        for at in range(begin, end):
            if text[at] in firsts and text[at:end] in waiting:
                return end - at
        return 0


_STOP_TAIL = _Tail(STOP_TOKENS, complete=True)
_MARKER_TAILS = {state: _Tail(markers, complete=False) for state, markers in _MARKERS.items()}
_WAITING = {state: tail.waiting | _STOP_TAIL.waiting for state, tail in _MARKER_TAILS.items()}
"""Per state: unread texts that, whole, may still become a marker or the final stop token."""


_earliest = earliest


class StreamParser:
    """Parse GLM-4.5 output chunk by chunk: ``feed`` returns deltas, ``close`` flushes the rest
    and ``result`` then gives the same ``Parsed`` as ``parse`` on the whole text.

    A ``ToolCallStart`` that is never followed by its ``ToolCallEnd`` marks a call left
    unclosed at the end of the output; its text then arrives as content from ``close``.
    """

    def __init__(
        self,
        tools: Sequence[Mapping[str, Any]] | ToolSchemas | None = None,
        *,
        thinking: bool = True,
    ) -> None:
        self._schemas = schemas_for(tools)
        self._thinking = thinking
        self._buf = ""
        self._state = _START
        self._closed = False
        self._out: list[StreamDelta] = []
        self._reasoning: list[str] = []
        self._content: list[str] = []
        self._segment_open = False
        self._pending_ws = ""
        self._calls: list[ParsedToolCall] = []
        self._problems: list[Problem] = []
        self._stop: str | None = None
        self._raw: list[str] = []
        self._name = ""
        self._parts: list[str] = []
        self._gap: list[str] = []
        self._key = ""
        self._arguments: dict[str, Any] = {}
        self._object_open = False
        self._value_streams = False
        self._stray_reported = False

    # -- public -------------------------------------------------------------------------------

    def feed(self, chunk: str) -> list[StreamDelta]:
        if self._closed:
            raise RuntimeError("StreamParser.feed() after close()")
        buf = self._buf + chunk if self._buf else chunk
        state = self._state
        if "<" not in buf and state in _PLAIN_STATES:
            # no marker and no stop token can start here: all of it is text of this state
            self._buf = ""
            if not buf:
                return []
            if state is _REASONING:
                self._reasoning.append(buf)
                return [ReasoningDelta(buf)]
            self._text(buf)
            return self._take()
        self._buf = buf
        if state is not _START and buf in _WAITING[state]:
            return []  # a tag (or the stop token) split across chunks, still incomplete
        self._process(final=False)
        return self._take()

    def close(self, last_chunk: str = "") -> list[StreamDelta]:
        """End of output (optionally with its last chunk): flush held text, finish the turn."""
        if self._closed:
            if last_chunk:
                raise RuntimeError("StreamParser.close() with text after close()")
            return []
        self._closed = True
        buf = self._buf + last_chunk
        if buf.endswith("|>"):
            for token in STOP_TOKENS:
                if buf.endswith(token):
                    self._stop = token
                    buf = buf[: -len(token)]
                    break
        self._buf = buf
        self._process(final=True)
        self._finish()
        return self._take()

    def _take(self) -> list[StreamDelta]:
        out, self._out = self._out, []
        return out

    def result(self) -> Parsed:
        if not self._closed:
            raise RuntimeError("StreamParser.result() before close()")
        reasoning = "".join(self._reasoning)
        return built_parsed(
            reasoning or None,
            "".join(self._content),
            list(self._calls),
            list(self._problems),
            self._stop,
        )

    # -- driver -------------------------------------------------------------------------------

    def _problem(self, kind: ProblemKind, message: str, call_index: int | None = None) -> None:
        self._problems.append(Problem(kind=kind, message=message, call_index=call_index))

    def _process(self, *, final: bool) -> None:
        """Consume the buffer from an offset (no copy per marker); only text before ``held``
        is consumed, so the held suffix stays the same throughout."""
        held = 0 if final else _STOP_TAIL.length(self._buf, 0, len(self._buf))
        if self._state is _START and not self._start(final=final):
            return
        buf = self._buf
        limit = len(buf) - held
        at = 0
        while True:
            state = self._state
            position, marker = _earliest(buf, _MARKERS[state], at, limit)
            if marker is None:
                safe = limit if final else limit - _MARKER_TAILS[state].length(buf, at, limit)
                if safe > at:
                    self._text(buf[at:safe])
                    at = safe
                self._buf = buf[at:] if at else buf
                return
            if position > at:
                self._text(buf[at:position])
            # after a name, a "<" is left unread: it starts the tag the body reads next
            unread = state is _NAME and marker == "<"
            at = position if unread else position + len(marker)
            self._marker(marker)

    def _start(self, *, final: bool) -> bool:
        stripped = self._buf.lstrip()
        self._buf = stripped
        if not stripped:
            if final:
                self._state = _CONTENT
            return final
        if stripped.startswith(THINK_OPEN):
            self._buf = stripped[len(THINK_OPEN) :]
            self._state = _REASONING
            return True
        if not final and (
            THINK_OPEN.startswith(stripped)
            or _STOP_TAIL.length(stripped, 0, len(stripped)) == len(stripped)
        ):
            return False
        if self._thinking:
            self._problems.append(problems.MISSING_THINK)
        self._state = _CONTENT
        return True

    # -- text and markers per state -----------------------------------------------------------

    def _text(self, text: str) -> None:
        state = self._state
        if state is _REASONING:
            self._reasoning.append(text)
            self._out.append(ReasoningDelta(text))
        elif state is _CONTENT:
            self._content_text(text, after_calls=bool(self._calls))
        else:
            self._raw.append(text)
            if state in (_NAME, _KEY, _VALUE):
                self._parts.append(text)
                if self._value_streams and state is _VALUE:
                    escaped = _escape(text)[1:-1]
                    self._out.append(ToolCallArgumentsDelta(len(self._calls), escaped))
            elif state in (_BODY, _WAIT_VALUE):
                self._gap.append(text)

    def _marker(self, marker: str) -> None:
        state = self._state
        if state is _REASONING:
            if marker == THINK_CLOSE:
                self._state = _CONTENT
            else:
                self._problem("unclosed_think", "<tool_call> began inside <think> before </think>")
                self._open_call()
            return
        if state is _CONTENT:
            self._end_segment()
            self._open_call()
            return
        if state is _NAME:
            if marker != "<":  # a "<" is left unread (see ``_process``)
                self._raw.append(marker)
            self._end_name(newline=marker != "<")
            return
        self._raw.append(marker)
        if state is _BAD_CALL:
            raw = "".join(self._raw)
            self._content_text(raw, after_calls=False)
            self._end_segment()
            self._state = _CONTENT
        elif state is _BODY:
            self._check_gap(problems.STRAY_IN_BODY)
            if marker == KEY_OPEN:
                self._parts = []
                self._state = _KEY
            else:
                self._close_call()
        elif state is _KEY:
            self._key = "".join(self._parts).strip()
            self._parts = []
            self._state = _WAIT_VALUE
        elif state is _WAIT_VALUE:
            self._check_gap(problems.stray_before_value(self._key))
            if marker == VALUE_OPEN:
                self._start_value()
                return
            self._problems.append(problems.missing_value(self._name, self._key, len(self._calls)))
            if marker == KEY_OPEN:
                self._parts = []
                self._state = _KEY
            else:
                self._close_call()
        elif state is _VALUE:
            self._end_value()

    # -- content ------------------------------------------------------------------------------

    def _content_text(self, text: str, *, after_calls: bool) -> None:
        if not self._segment_open:
            text = text.lstrip()
            if not text:
                return
            self._segment_open = True
            self._pending_ws = "\n" if self._content else ""
            if after_calls:
                self._problems.append(problems.TEXT_AFTER_CALLS)
        body = self._pending_ws + text
        kept = body.rstrip()
        self._pending_ws = body[len(kept) :]
        if kept:
            self._content.append(kept)
            self._out.append(ContentDelta(kept))

    def _end_segment(self) -> None:
        self._segment_open = False
        self._pending_ws = ""

    # -- calls --------------------------------------------------------------------------------

    def _open_call(self) -> None:
        self._raw = [CALL_OPEN]
        self._parts = []
        self._gap = []
        self._name = ""
        self._key = ""
        self._arguments = {}
        self._object_open = False
        self._stray_reported = False
        self._state = _NAME

    def _end_name(self, *, newline: bool) -> None:
        name = "".join(self._parts).strip()
        self._parts = []
        if not name:
            self._problem(
                "missing_tool_name", "a <tool_call> has no function name; its text is kept"
            )
            self._state = _BAD_CALL
            return
        index = len(self._calls)
        self._name = name
        if not newline:
            self._problems.append(problems.missing_name_newline(name, index))
        if self._schemas.given and not self._schemas.knows(name):
            self._problems.append(problems.unknown_tool(name, index))
        self._out.append(ToolCallStart(index, name))
        self._state = _BODY

    def _check_gap(self, what: str) -> None:
        gap = "".join(self._gap).replace(_LITERAL_NEWLINE, "").strip()
        self._gap = []
        if gap and not self._stray_reported:
            self._stray_reported = True
            self._problems.append(problems.stray_text(self._name, what, gap, len(self._calls)))

    def _key_fragment(self) -> str:
        prefix = ", " if self._object_open else "{"
        self._object_open = True
        return f"{prefix}{_escape(self._key)}: "

    def _start_value(self) -> None:
        """String-typed values are the raw text, so they stream as they arrive; other values
        are typed from the whole text and sent when complete."""
        self._parts = []
        self._state = _VALUE
        _, expected = self._schemas.argument_type(self._name, self._key)
        self._value_streams = expected == "string"
        if self._value_streams:
            fragment = self._key_fragment() + '"'
            self._out.append(ToolCallArgumentsDelta(len(self._calls), fragment))

    def _end_value(self) -> None:
        raw = "".join(self._parts)
        self._parts = []
        index = len(self._calls)
        schema, expected = self._schemas.argument_type(self._name, self._key)
        value, issue = decode_typed(raw, schema, expected)
        if issue is not None:
            self._problems.append(problems.invalid_value(self._name, self._key, issue, index))
        if self._key in self._arguments:
            self._problems.append(problems.duplicate_argument(self._name, self._key, index))
        self._arguments[self._key] = value
        if self._value_streams:
            fragment = '"'
            self._value_streams = False
        else:
            fragment = self._key_fragment() + json_text(value)
        self._out.append(ToolCallArgumentsDelta(index, fragment))
        self._state = _BODY

    def _close_call(self) -> None:
        index = len(self._calls)
        self._out.append(ToolCallArgumentsDelta(index, "}" if self._object_open else "{}"))
        call = built_call(index, self._name, self._arguments, "".join(self._raw))
        self._calls.append(call)
        self._out.append(ToolCallEnd(index, call))
        self._arguments = {}
        self._state = _CONTENT

    def _finish(self) -> None:
        state = self._state
        if state is _REASONING:
            self._problems.append(problems.UNCLOSED_THINK)
        elif state in _CALL_STATES:
            index = None if state is _BAD_CALL else len(self._calls)
            self._problems.append(problems.unclosed_call(index))
            self._end_segment()
            self._content_text("".join(self._raw), after_calls=False)
        self._end_segment()
        self._state = _CONTENT
