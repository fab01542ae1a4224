"""The completion text parsed as SGLang's glm45 parsers do: reasoning, content and tool calls,
as deltas (streamed) that an :class:`Answer` gathers into the whole message."""

from __future__ import annotations

import uuid
from typing import Any

from agentkit.dialects.glm45 import (
    ContentDelta,
    ReasoningDelta,
    StreamParser,
    ToolCallArgumentsDelta,
    ToolCallEnd,
    ToolCallStart,
)

__all__ = ["Answer", "Delta", "ReplyParser", "call_id"]

_THINK_OPEN = "<think>"
_THINK_CLOSE = "</think>"

Delta = ReasoningDelta | ContentDelta | ToolCallStart | ToolCallArgumentsDelta | ToolCallEnd


def call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


class _NoToolsSplitter:
    """Reasoning/content split for requests without tools: tool markup stays content (as in
    SGLang, which runs no tool parser then), reasoning and stripping follow the glm45 dialect."""

    def __init__(self, *, thinking: bool) -> None:
        self._mode = "start" if thinking else "content"
        self._buf = ""
        self._content_started = False
        self._pending_ws = ""

    def feed(self, chunk: str) -> list[Delta]:
        self._buf += chunk
        return self._drain(final=False)

    def close(self) -> list[Delta]:
        return self._drain(final=True)

    def _drain(self, *, final: bool) -> list[Delta]:
        out: list[Delta] = []
        if self._mode == "start":
            stripped = self._buf.lstrip()
            if not final and (not stripped or _THINK_OPEN.startswith(stripped)):
                return out  # could still be the opening <think>
            if stripped.startswith(_THINK_OPEN):
                self._buf = stripped[len(_THINK_OPEN) :]
                self._mode = "reasoning"
            else:
                self._mode = "content"
        if self._mode == "reasoning":
            end = self._buf.find(_THINK_CLOSE)
            if end < 0:
                keep = 0 if final else _partial_suffix(self._buf, _THINK_CLOSE)
                emit, self._buf = (
                    self._buf[: len(self._buf) - keep],
                    self._buf[len(self._buf) - keep :],
                )
                if emit:
                    out.append(ReasoningDelta(emit))
                return out
            if end:
                out.append(ReasoningDelta(self._buf[:end]))
            self._buf = self._buf[end + len(_THINK_CLOSE) :]
            self._mode = "content"
        out.extend(self._content(final=final))
        return out

    def _content(self, *, final: bool) -> list[Delta]:
        text, self._buf = self._buf, ""
        if not self._content_started:
            text = text.lstrip()
            self._content_started = bool(text)
        if not text:
            return []
        body = text.rstrip()
        piece = self._pending_ws + body if body else ""
        self._pending_ws = (self._pending_ws if not body else "") + text[len(body) :]
        return [ContentDelta(piece)] if piece else []


def _partial_suffix(text: str, marker: str) -> int:
    for size in range(min(len(marker) - 1, len(text)), 0, -1):
        if text.endswith(marker[:size]):
            return size
    return 0


class ReplyParser:
    """Either the glm45 dialect's stream parser (tools sent) or the reasoning-only splitter."""

    def __init__(
        self, tools: list[dict[str, Any]], *, thinking: bool, separate_reasoning: bool
    ) -> None:
        self.tools_active = bool(tools)
        self._separate = separate_reasoning
        self._dialect: StreamParser | None = None
        self._splitter: _NoToolsSplitter | None = None
        if self.tools_active:
            self._dialect = StreamParser(tools, thinking=thinking and separate_reasoning)
        else:
            self._splitter = _NoToolsSplitter(thinking=thinking and separate_reasoning)

        self._in_reasoning = False

    def feed(self, text: str) -> list[Delta]:
        if self._dialect is not None:
            return self._unseparated(self._dialect.feed(text))
        assert self._splitter is not None
        return self._splitter.feed(text)

    def close(self) -> list[Delta]:
        if self._dialect is not None:
            return self._unseparated(self._dialect.close())
        assert self._splitter is not None
        return self._splitter.close()

    def _unseparated(self, deltas: list[Delta]) -> list[Delta]:
        """With ``separate_reasoning: false`` the reasoning stays in the content, tags included."""
        if self._separate:
            return deltas
        out: list[Delta] = []
        for delta in deltas:
            if isinstance(delta, ReasoningDelta):
                opening = "" if self._in_reasoning else _THINK_OPEN
                self._in_reasoning = True
                out.append(ContentDelta(opening + delta.text))
                continue
            if self._in_reasoning:
                self._in_reasoning = False
                out.append(ContentDelta(_THINK_CLOSE + "\n"))
            out.append(delta)
        return out


class Answer:
    """The parsed assistant message accumulated from deltas (stream and non-stream alike)."""

    def __init__(self) -> None:
        self.reasoning: list[str] = []
        self.content: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}

    def add(self, delta: Delta) -> None:
        if isinstance(delta, ReasoningDelta):
            self.reasoning.append(delta.text)
        elif isinstance(delta, ContentDelta):
            self.content.append(delta.text)
        elif isinstance(delta, ToolCallEnd):
            self.calls[delta.index] = {
                "id": call_id(),
                "index": len(self.calls),
                "type": "function",
                "function": {"name": delta.call.name, "arguments": delta.call.arguments_json()},
            }
