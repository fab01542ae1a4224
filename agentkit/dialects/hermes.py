"""The Hermes / Qwen tool-call dialect: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``.

Open models other than GLM (Qwen2.5/Qwen3, Hermes, many llama.cpp and Ollama models) write tool
calls as one JSON object per ``<tool_call>`` block, in a ChatML prompt whose tool results come
back as ``<tool_response>`` blocks inside a user turn. This module renders such prompts and
parses such output into the same :class:`~agentkit.dialects.glm45.results.Parsed` shape as the
GLM-4.5 dialect.

Parsing keeps every character: a block that is not a valid call stays in ``content`` and is
reported as a :class:`Problem`. With ``lenient=True`` a reply with no ``<tool_call>`` tags whose
whole text is one JSON call (bare or in a json code fence) to a declared tool is taken as a call,
since small models often drop the tags.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from .glm45.results import Parsed, ParsedToolCall, Problem

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
ENDOFTEXT = "<|endoftext|>"
STOP_STRINGS = (IM_END, ENDOFTEXT)
CALL_OPEN = "<tool_call>"
CALL_CLOSE = "</tool_call>"
THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"

_TOOLS_INTRO = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
)
_TOOLS_OUTRO = (
    "\n</tools>\n\nFor each function call, return a json object with function name and "
    "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
)
_FENCE = re.compile(r"^```(?:json)?\s*\n?(.*?)\n?```$", re.DOTALL)


def repair_hint() -> str:
    """How a well-formed Hermes call is written: one JSON object per ``<tool_call>`` block."""
    return (
        'Write each call as <tool_call>\n{"name": NAME, "arguments": {...}}\n</tool_call>, '
        "where the arguments are one valid JSON object (double-quoted keys and strings)."
    )


# -- formatting --------------------------------------------------------------------------------


def format_tool_call(name: str, arguments: Mapping[str, Any]) -> str:
    """One call as Qwen's template renders it (no leading newline)."""
    body = json.dumps({"name": name, "arguments": dict(arguments)}, ensure_ascii=False)
    return f"{CALL_OPEN}\n{body}\n{CALL_CLOSE}"


def format_assistant(
    reasoning: str | None, content: str, tool_calls: Sequence[tuple[str, Mapping[str, Any]]]
) -> str:
    """The raw text of one assistant turn (no end token): reasoning, content, then calls."""
    parts: list[str] = []
    if reasoning and reasoning.strip():
        parts.append(f"{THINK_OPEN}\n{reasoning.strip()}\n{THINK_CLOSE}\n\n")
    text = content.strip()
    parts.append(text)
    for name, arguments in tool_calls:
        parts.append(("\n" if parts[-1] else "") + format_tool_call(name, arguments))
    return "".join(parts)


def tools_system_prompt(tools: Sequence[Mapping[str, Any]], system: str = "") -> str:
    """The system text that declares ``tools`` (OpenAI tool dicts), after ``system``."""
    lines = "".join("\n" + json.dumps(tool, ensure_ascii=False) for tool in tools)
    head = f"{system}\n\n" if system else ""
    return head + _TOOLS_INTRO + lines + _TOOLS_OUTRO


def render(
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] | None = None,
    *,
    add_generation_prompt: bool = True,
) -> str:
    """A ChatML prompt in the Qwen2.5 tool template's layout, from OpenAI-style message dicts.

    The tools block joins the first system message; consecutive tool results share one user
    turn of ``<tool_response>`` blocks; reasoning is shown only for assistant turns after the
    last user message (as Qwen3's template does).
    """
    items = list(messages)
    out: list[str] = []
    system = ""
    if items and items[0].get("role") == "system":
        system = _text(items[0].get("content"))
        items = items[1:]
        if not tools:
            out.append(f"{IM_START}system\n{system}{IM_END}\n")
    if tools:
        out.append(f"{IM_START}system\n{tools_system_prompt(tools, system)}{IM_END}\n")
    last_user = max((i for i, m in enumerate(items) if m.get("role") == "user"), default=-1)
    for index, message in enumerate(items):
        role = message.get("role")
        if role in ("user", "system"):
            out.append(f"{IM_START}{role}\n{_text(message.get('content'))}{IM_END}\n")
        elif role == "assistant":
            reasoning = message.get("reasoning_content") if index > last_user else None
            calls = [_call_of(call) for call in message.get("tool_calls") or ()]
            body = format_assistant(
                reasoning if isinstance(reasoning, str) else None,
                _text(message.get("content")),
                calls,
            )
            out.append(f"{IM_START}assistant\n{body}{IM_END}\n")
        elif role == "tool":
            previous = items[index - 1].get("role") if index > 0 else None
            following = items[index + 1].get("role") if index + 1 < len(items) else None
            if previous != "tool":
                out.append(f"{IM_START}user")
            out.append(f"\n<tool_response>\n{_text(message.get('content'))}\n</tool_response>")
            if following != "tool":
                out.append(f"{IM_END}\n")
        else:
            raise ValueError(f"unknown message role: {role!r}")
    if add_generation_prompt:
        out.append(f"{IM_START}assistant\n")
    return "".join(out)


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return "".join(
            str(part.get("text", "")) if isinstance(part, Mapping) else str(part)
            for part in content
        )
    return str(content)


def _call_of(call: Any) -> tuple[str, Mapping[str, Any]]:
    if not isinstance(call, Mapping):
        raise ValueError(f"a tool call must be a mapping, got {type(call).__name__}")
    function = call.get("function")
    target: Mapping[str, Any] = function if isinstance(function, Mapping) else call
    name = target.get("name")
    if not isinstance(name, str):
        raise ValueError(f"tool call without a name: {dict(call)!r}")
    arguments = target.get("arguments")
    if isinstance(arguments, str):
        arguments = json.loads(arguments) if arguments.strip() else {}
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, Mapping):
        raise ValueError(f"tool call {name!r}: arguments must be a JSON object")
    return name, arguments


# -- parsing -----------------------------------------------------------------------------------


def parse(
    text: str,
    tools: Sequence[Mapping[str, Any]] | None = None,
    *,
    lenient: bool = False,
) -> Parsed:
    """Parse one assistant turn of raw model output.

    ``tools`` (OpenAI tool dicts) lets calls to undeclared tools be reported; they are still
    returned, so the runtime can answer them with an error observation.
    """
    known = _tool_names(tools)
    problems: list[Problem] = []
    text, stop = _split_stop(text)
    reasoning, rest = _split_reasoning(text, problems)
    content_parts: list[str] = []
    calls: list[ParsedToolCall] = []
    position = 0
    while True:
        start = rest.find(CALL_OPEN, position)
        if start < 0:
            content_parts.append(rest[position:])
            break
        content_parts.append(rest[position:start])
        end = rest.find(CALL_CLOSE, start + len(CALL_OPEN))
        closed = end >= 0
        block_end = end + len(CALL_CLOSE) if closed else len(rest)
        raw = rest[start:block_end]
        body = rest[start + len(CALL_OPEN) : end if closed else len(rest)]
        call = _parse_call(body, raw, len(calls), known, problems, closed=closed)
        if call is None:
            content_parts.append(raw)
        else:
            if calls and content_parts[-1].strip():
                _text_after_calls(problems, len(calls))
            calls.append(call)
        position = block_end
    tail = content_parts[-1] if calls else ""
    if calls and tail.strip():
        _text_after_calls(problems, len(calls) - 1)
    content = "".join(content_parts).strip()
    if lenient and not calls and known:
        bare = _parse_bare_call(content, known)
        if bare is not None:
            calls.append(bare)
            content = ""
    return Parsed(
        reasoning=reasoning, content=content, tool_calls=calls, problems=problems, stop=stop
    )


def _tool_names(tools: Sequence[Mapping[str, Any]] | None) -> set[str]:
    names: set[str] = set()
    for tool in tools or ():
        function = tool.get("function", tool)
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            names.add(function["name"])
    return names


def _split_stop(text: str) -> tuple[str, str | None]:
    for stop in STOP_STRINGS:
        if text.endswith(stop):
            return text[: -len(stop)], stop
    return text, None


def _split_reasoning(text: str, problems: list[Problem]) -> tuple[str | None, str]:
    stripped = text.lstrip()
    if stripped.startswith(THINK_OPEN):
        inner = stripped[len(THINK_OPEN) :]
        end = inner.find(THINK_CLOSE)
        if end < 0:
            problems.append(
                Problem(kind="unclosed_think", message="<think> is never closed (truncated?)")
            )
            return inner.strip(), ""
        return inner[:end].strip(), inner[end + len(THINK_CLOSE) :]
    if THINK_CLOSE in text and THINK_OPEN not in text:
        # The prompt opened <think> (Qwen3 style) and the model only closes it.
        before, _, after = text.partition(THINK_CLOSE)
        return before.strip(), after
    return None, text


def _text_after_calls(problems: list[Problem], index: int) -> None:
    if not any(p.kind == "text_after_tool_calls" for p in problems):
        problems.append(
            Problem(
                kind="text_after_tool_calls",
                message="text after a tool call was kept in content",
                call_index=index,
            )
        )


def _parse_call(
    body: str,
    raw: str,
    index: int,
    known: set[str],
    problems: list[Problem],
    *,
    closed: bool,
) -> ParsedToolCall | None:
    notes = _JsonNotes()
    obj, error = _json_object(body, notes)
    if obj is None:
        kind = "malformed_arguments" if closed else "unclosed_tool_call"
        problems.append(
            Problem(kind=kind, message=f"tool call is not a JSON object: {error}", call_index=index)
        )
        return None
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        problems.append(
            Problem(kind="missing_tool_name", message="tool call has no name", call_index=index)
        )
        return None
    arguments, arg_error = _arguments(obj, notes)
    if arguments is None:
        problems.append(
            Problem(
                kind="malformed_arguments",
                message=f"tool call {name!r}: {arg_error}",
                call_index=index,
            )
        )
        return None
    problems.extend(notes.problems(name, index))
    if not closed:
        problems.append(
            Problem(
                kind="unclosed_tool_call",
                message=f"tool call {name!r} has no </tool_call>; its JSON was complete",
                call_index=index,
            )
        )
    if known and name not in known:
        problems.append(
            Problem(kind="unknown_tool", message=f"unknown tool {name!r}", call_index=index)
        )
    return ParsedToolCall(index=index, name=name, arguments=arguments, raw=raw)


class _JsonNotes:
    """What a strict reading of a call's JSON noticed: keys given twice (the last value is
    kept, as ``json.loads`` does) and numbers JSON cannot hold (``1e999``: kept as text)."""

    def __init__(self) -> None:
        self.duplicates: list[str] = []
        self.non_finite: list[str] = []
        self.decoder = json.JSONDecoder(
            object_pairs_hook=self._object, parse_float=self._float, parse_constant=_no_constant
        )

    def _object(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        for key, value in pairs:
            if key in obj:
                self.duplicates.append(key)
            obj[key] = value
        return obj

    def _float(self, text: str) -> Any:
        value = float(text)
        if math.isfinite(value):
            return value
        self.non_finite.append(text)
        return text

    def loads(self, text: str) -> Any:
        value, end = self.decoder.raw_decode(text)
        if text[end:].strip():
            raise ValueError(f"extra text after the JSON value: {text[end:].strip()[:80]!r}")
        return value

    def problems(self, name: str, index: int) -> list[Problem]:
        found = [
            Problem(
                kind="duplicate_argument",
                message=f"tool call {name!r}: key {key!r} is given more than once; the last "
                "value is kept",
                call_index=index,
            )
            for key in dict.fromkeys(self.duplicates)
        ]
        found += [
            Problem(
                kind="invalid_argument_value",
                message=f"tool call {name!r}: the number {text} is not finite; kept as text",
                call_index=index,
            )
            for text in self.non_finite
        ]
        return found


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json_object(body: str, notes: _JsonNotes | None = None) -> tuple[dict[str, Any] | None, str]:
    stripped = body.strip()
    fenced = _FENCE.match(stripped)
    if fenced:
        stripped = fenced.group(1).strip()
    reader = notes or _JsonNotes()
    try:
        value, end = reader.decoder.raw_decode(stripped)
    except json.JSONDecodeError as exc:
        return None, exc.msg
    except ValueError as exc:
        return None, str(exc)
    if stripped[end:].strip():
        return None, f"extra text after the JSON object: {stripped[end:].strip()[:80]!r}"
    if not isinstance(value, dict):
        return None, f"expected an object, got {type(value).__name__}"
    return value, ""


def _arguments(
    obj: Mapping[str, Any], notes: _JsonNotes | None = None
) -> tuple[dict[str, Any] | None, str]:
    value = obj.get("arguments", obj.get("parameters", {}))
    if value is None:
        return {}, ""
    if isinstance(value, str):
        if not value.strip():
            return {}, ""
        try:
            value = (notes or _JsonNotes()).loads(value.strip())
        except json.JSONDecodeError as exc:
            return None, f"arguments text is not valid JSON ({exc.msg})"
        except ValueError as exc:
            return None, f"arguments text is not valid JSON ({exc})"
    if not isinstance(value, dict):
        return None, f"arguments must be a JSON object, got {type(value).__name__}"
    return value, ""


def _parse_bare_call(content: str, known: set[str]) -> ParsedToolCall | None:
    obj, _ = _json_object(content)
    if obj is None or obj.get("name") not in known:
        return None
    arguments, _ = _arguments(obj)
    if arguments is None:
        return None
    return ParsedToolCall(index=0, name=str(obj["name"]), arguments=arguments, raw=content)
