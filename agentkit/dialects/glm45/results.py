"""What parsing GLM-4.5 output yields: reasoning, content, tool calls, problems, stop token."""

from __future__ import annotations

import json
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
        """The arguments as SGLang's chat API sends them (``json.dumps``, non-ASCII kept)."""
        return json.dumps(self.arguments, ensure_ascii=False)


class Parsed(BaseModel):
    """One assistant turn parsed from raw output."""

    model_config = ConfigDict(frozen=True)

    reasoning: str | None = None
    content: str = ""
    tool_calls: list[ParsedToolCall] = []
    problems: list[Problem] = []
    stop: str | None = None
