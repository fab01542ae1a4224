"""The GLM-4.5 dialect: render prompts exactly like the published chat template, and parse the
model's raw output (whole or streamed) into reasoning, content and typed tool calls.

See ``docs/dialect-glm45.md`` for the format and the deliberate differences from SGLang.
"""

from __future__ import annotations

from .common_shapes import Plain
from .parse import parse, parse_plain
from .render import (
    format_assistant,
    generation_prompt,
    render,
    render_continuation,
    render_messages,
    render_tool_result,
    render_with_tools_block,
    tools_block,
)
from .repair import repair_hint
from .results import Parsed, ParsedToolCall, Problem, ProblemKind
from .stream import (
    ContentDelta,
    ReasoningDelta,
    StreamDelta,
    StreamParser,
    ToolCallArgumentsDelta,
    ToolCallEnd,
    ToolCallStart,
)
from .tokens import SPECIAL_TOKENS, STOP_TOKEN_IDS, STOP_TOKENS
from .typing_ import ToolSchemas

__all__ = [
    "SPECIAL_TOKENS",
    "STOP_TOKENS",
    "STOP_TOKEN_IDS",
    "ContentDelta",
    "Parsed",
    "ParsedToolCall",
    "Plain",
    "Problem",
    "ProblemKind",
    "ReasoningDelta",
    "StreamDelta",
    "StreamParser",
    "ToolCallArgumentsDelta",
    "ToolCallEnd",
    "ToolCallStart",
    "ToolSchemas",
    "format_assistant",
    "generation_prompt",
    "parse",
    "parse_plain",
    "render",
    "render_continuation",
    "render_messages",
    "render_tool_result",
    "render_with_tools_block",
    "repair_hint",
    "tools_block",
]
