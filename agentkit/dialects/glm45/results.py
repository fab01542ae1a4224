"""What parsing GLM-4.5 output yields: reasoning, content, tool calls, problems, stop token."""

from __future__ import annotations

import json
import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

ProblemKind = Literal[
    "missing_think",
    "unclosed_think",
    "unknown_tool",
    "unclosed_tool_call",
    "missing_tool_name",
    "missing_name_newline",
    "malformed_arguments",
    "invalid_argument_value",
    "duplicate_argument",
    "text_after_tool_calls",
]


class Problem(BaseModel):
    """Something malformed in the model's output; the text involved is never dropped."""

    model_config = ConfigDict(frozen=True)

    kind: ProblemKind
    message: str
    call_index: int | None = None


class ParsedToolCall(BaseModel):
    """One complete ``<tool_call>``: its position among the calls, name, typed arguments and
    the markup it was parsed from."""

    model_config = ConfigDict(frozen=True)

    index: int
    name: str
    arguments: dict[str, Any]
    raw: str

    def arguments_json(self) -> str:
        """The arguments as SGLang's chat API sends them (``json.dumps``, non-ASCII kept);
        always valid JSON (a non-finite number, which the parser never gives, becomes text)."""
        return strict_json(self.arguments)


def strict_json(value: Any) -> str:
    """``json.dumps`` that never writes ``NaN``/``Infinity`` (not JSON): such numbers are
    written as their text instead."""
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(value), ensure_ascii=False, allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


class Parsed(BaseModel):
    """One assistant turn parsed from raw output."""

    model_config = ConfigDict(frozen=True)

    reasoning: str | None = None
    content: str = ""
    tool_calls: list[ParsedToolCall] = []
    problems: list[Problem] = []
    stop: str | None = None


# The parsers build these two models from values they typed themselves, once per completion and
# per call; validating them again is a large share of parsing a short completion. ``built_*``
# make the instance validation would make (same fields, same ``model_fields_set``; the tests
# compare them with validated ones) without validating. They take ownership of the containers
# passed (no copy); the callers pass fresh ones.
_set_slot = object.__setattr__
_new = object.__new__
_PARSED_FIELDS = frozenset(Parsed.model_fields)
_CALL_FIELDS = frozenset(ParsedToolCall.model_fields)


def built_parsed(
    reasoning: str | None,
    content: str,
    tool_calls: list[ParsedToolCall],
    problems: list[Problem],
    stop: str | None,
) -> Parsed:
    """``Parsed(reasoning=..., content=..., ...)`` for values of the declared types."""
    parsed = _new(Parsed)
    _set_slot(
        parsed,
        "__dict__",
        {
            "reasoning": reasoning,
            "content": content,
            "tool_calls": tool_calls,
            "problems": problems,
            "stop": stop,
        },
    )
    _set_slot(parsed, "__pydantic_fields_set__", set(_PARSED_FIELDS))
    _set_slot(parsed, "__pydantic_extra__", None)
    _set_slot(parsed, "__pydantic_private__", None)
    return parsed


def built_call(index: int, name: str, arguments: dict[str, Any], raw: str) -> ParsedToolCall:
    """``ParsedToolCall(index=..., name=..., ...)`` for values of the declared types."""
    call = _new(ParsedToolCall)
    _set_slot(call, "__dict__", {"index": index, "name": name, "arguments": arguments, "raw": raw})
    _set_slot(call, "__pydantic_fields_set__", set(_CALL_FIELDS))
    _set_slot(call, "__pydantic_extra__", None)
    _set_slot(call, "__pydantic_private__", None)
    return call
