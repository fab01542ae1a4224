"""What the streaming parser emits as GLM-4.5 output arrives."""

from __future__ import annotations

from dataclasses import dataclass

from .results import ParsedToolCall


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ContentDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallStart:
    index: int
    name: str


@dataclass(frozen=True, slots=True)
class ToolCallArgumentsDelta:
    """A JSON fragment; a call's fragments concatenate to the JSON object of its arguments."""

    index: int
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallEnd:
    index: int
    call: ParsedToolCall


StreamDelta = ReasoningDelta | ContentDelta | ToolCallStart | ToolCallArgumentsDelta | ToolCallEnd
