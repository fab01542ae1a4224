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
