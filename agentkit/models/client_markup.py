"""Client-side tool-call parsing for OpenAI-compatible servers started without a tool parser.

vLLM, llama.cpp's server or Ollama without a parser leave the model's markup (``<think>``,
``<tool_call>``) in ``content``. :func:`parse_client_side` turns a whole reply into reasoning,
content and calls with the chosen dialect; :class:`MarkupStream` does it for a stream, so that
no raw markup reaches a text delta: GLM-4.5 through the dialect's incremental parser, Hermes
(which has no incremental parser) by holding back everything from the first ``<tool_call>`` to
the end of the reply and any tail that may still become a tag.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from agentkit.dialects import glm45, hermes
from agentkit.messages import ToolCall
from agentkit.models.base import ModelDelta, StreamDeltaKind

ClientParser = Literal["hermes", "glm45"]
CLIENT_PARSERS: tuple[str, ...] = ("hermes", "glm45")
_MARKERS = ("<tool_call>", "<think>", "</think>")
# Parser problems that mean the model tried to call a tool but no runnable call came out.
MALFORMED_CALL_KINDS = frozenset({"unclosed_tool_call", "malformed_arguments", "missing_tool_name"})


def needs_client_parse(content: str) -> bool:
    """Whether ``content`` holds markup a client-side parser must take apart."""
    return any(marker in content for marker in _MARKERS)


def _parse(dialect: str, text: str, tools: Sequence[Mapping[str, Any]] | None) -> glm45.Parsed:
    if dialect == "hermes":
        return hermes.parse(text, tools or None)
    return glm45.parse(text, tools or None, thinking=False)


def calls_from_parsed(parsed: glm45.Parsed) -> tuple[list[ToolCall], list[str]]:
    """The parsed calls of a GLM-4.5 reply, and the problems that gave no call at all.

    A call whose arguments were malformed (a problem of kind ``malformed_arguments`` naming its
    ``call_index``, e.g. an ``<arg_key>`` without ``<arg_value>``) becomes a call with
    ``parse_error`` set, which the loop answers with that error instead of running it with
    partial arguments; ``raw_arguments`` keeps the markup the model wrote. The other malformed
    call problems (an unclosed call, no tool name) name no call and are returned as texts.
    """
    errors: dict[int, list[str]] = {}
    for problem in parsed.problems:
        if problem.kind == "malformed_arguments" and problem.call_index is not None:
            errors.setdefault(problem.call_index, []).append(problem.message)
    calls = [
        ToolCall(name=c.name, arguments=dict(c.arguments))
        if c.index not in errors
        else ToolCall(
            name=c.name,
            arguments=dict(c.arguments),
            raw_arguments=c.raw,
            parse_error="; ".join(errors[c.index]),
        )
        for c in parsed.tool_calls
    ]
    known = {c.index for c in parsed.tool_calls}
    malformed = [
        p.message
        for p in parsed.problems
        if p.kind in MALFORMED_CALL_KINDS
        and not (p.kind == "malformed_arguments" and p.call_index in known)
    ]
    return calls, malformed


def parse_client_side(
    dialect: str,
    content: str,
    reasoning: str | None,
    tools: list[dict[str, Any]],
    problems: list[str],
) -> tuple[str, str | None, list[ToolCall], list[str]]:
    """``(content, reasoning, calls, problems)`` of a reply whose markup is still in content."""
    parsed = _parse(dialect, content, tools)
    if dialect == "hermes":
        # hermes numbers calls by those parsed so far: a problem's index may be the next call's
        calls = [ToolCall(name=c.name, arguments=dict(c.arguments)) for c in parsed.tool_calls]
    else:
        calls, _ = calls_from_parsed(parsed)
    found = [f"{p.kind}: {p.message}" for p in parsed.problems]
    return parsed.content, parsed.reasoning or reasoning, calls, problems + found


class MarkupStream:
    """Turn streamed raw ``content`` into reasoning / content / tool-call deltas."""

    def __init__(self, dialect: str, tools: Sequence[Mapping[str, Any]] | None) -> None:
        self._dialect = dialect
        self._tools = tools
        self._glm = (
            glm45.StreamParser(tools or None, thinking=False) if dialect == "glm45" else None
        )
        self._raw: list[str] = []
        self._pending = ""  # hermes: text not yet shown
        self._held = False  # hermes: a <tool_call> began; hold the rest until the end
        self._in_think = False
        self._started = False
        self._reasoning_streamed = False
        self._shown: list[str] = []

    def feed(self, text: str) -> list[ModelDelta]:
        self._raw.append(text)
        if self._glm is not None:
            return [d for d in map(_from_glm, self._glm.feed(text)) if d is not None]
        return self._hermes_feed(text)

    def close(self) -> list[ModelDelta]:
        if self._glm is not None:
            return [d for d in map(_from_glm, self._glm.close()) if d is not None]
        return self._hermes_close()

    # --- hermes: hold what may be markup ---------------------------------------------------------

    def _hermes_feed(self, text: str) -> list[ModelDelta]:
        self._pending += text
        out: list[ModelDelta] = []
        if not self._started:
            stripped = self._pending.lstrip()
            if not stripped or "<think>".startswith(stripped):
                return out
            self._started = True
            if stripped.startswith("<think>"):
                self._in_think = True
                self._pending = stripped[len("<think>") :]
        while not self._held:
            if self._in_think:
                end = self._pending.find("</think>")
                if end < 0:
                    safe = len(self._pending) - _tail(self._pending, ("</think>",))
                    if safe > 0:
                        self._reasoning_streamed = True
                        out.append(_delta(StreamDeltaKind.REASONING, self._pending[:safe]))
                        self._pending = self._pending[safe:]
                    return out
                if end:
                    self._reasoning_streamed = True
                    out.append(_delta(StreamDeltaKind.REASONING, self._pending[:end]))
                self._pending = self._pending[end + len("</think>") :].lstrip()
                self._in_think = False
                continue
            start = min((i for m in _MARKERS if (i := self._pending.find(m)) >= 0), default=-1)
            if start >= 0:
                self._show(out, self._pending[:start])
                self._pending = self._pending[start:]
                self._held = True
                return out
            safe = len(self._pending) - _tail(self._pending, _MARKERS)
            self._show(out, self._pending[:safe])
            self._pending = self._pending[safe:]
            return out
        return out

    def _show(self, out: list[ModelDelta], text: str) -> None:
        if text:
            self._shown.append(text)
            out.append(_delta(StreamDeltaKind.CONTENT, text))

    def _hermes_close(self) -> list[ModelDelta]:
        parsed = _parse(self._dialect, "".join(self._raw), self._tools)
        out: list[ModelDelta] = []
        shown = "".join(self._shown).strip()
        if parsed.reasoning and not self._reasoning_streamed and not self._shown:
            out.append(_delta(StreamDeltaKind.REASONING, parsed.reasoning))
        if parsed.content.startswith(shown) and parsed.content[len(shown) :].strip():
            rest = parsed.content[len(shown) :]
            out.append(_delta(StreamDeltaKind.CONTENT, rest if shown else rest.lstrip()))
        for call in parsed.tool_calls:
            out.append(
                ModelDelta(kind=StreamDeltaKind.TOOL_CALL_START, index=call.index, name=call.name)
            )
            out.append(
                ModelDelta(
                    kind=StreamDeltaKind.TOOL_CALL_ARGUMENTS,
                    index=call.index,
                    text=call.arguments_json(),
                )
            )
        return out


def _tail(text: str, markers: Sequence[str]) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of a marker."""
    best = 0
    for marker in markers:
        for size in range(min(len(marker) - 1, len(text)), 0, -1):
            if text.endswith(marker[:size]):
                best = max(best, size)
                break
    return best


def _delta(kind: str, text: str) -> ModelDelta:
    return ModelDelta(kind=kind, text=text)


def _from_glm(delta: glm45.StreamDelta) -> ModelDelta | None:
    if isinstance(delta, glm45.ReasoningDelta):
        return _delta(StreamDeltaKind.REASONING, delta.text)
    if isinstance(delta, glm45.ContentDelta):
        return _delta(StreamDeltaKind.CONTENT, delta.text)
    if isinstance(delta, glm45.ToolCallStart):
        return ModelDelta(kind=StreamDeltaKind.TOOL_CALL_START, index=delta.index, name=delta.name)
    if isinstance(delta, glm45.ToolCallArgumentsDelta):
        return ModelDelta(
            kind=StreamDeltaKind.TOOL_CALL_ARGUMENTS, index=delta.index, text=delta.text
        )
    return None
