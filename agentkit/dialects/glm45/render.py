"""Render OpenAI-style messages into GLM-4.5 prompt text, byte for byte like the published template.

The published ``chat_template.jinja`` is reproduced in plain Python (no jinja at run time), as
transformers renders it (``trim_blocks``/``lstrip_blocks``, ``tojson`` = ``json.dumps`` with
default separators). Quirks of the template are kept on purpose, because the model was trained
on them: the tools block is its own ``<|system|>`` section; reasoning is shown only for assistant
turns after the last user message; assistant content is stripped; a tool message whose content
is a list always opens a new ``<|observation|>``; a ``None`` content renders as ``None``.

Tool-call ``arguments`` may be a mapping or a JSON object text (parsed first, as SGLang does);
``None`` or ``""`` means no arguments.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .tokens import (
    ASSISTANT,
    CALL_CLOSE,
    CALL_OPEN,
    NOTHINK,
    OBSERVATION,
    PROMPT_PREFIX,
    STOP_TOKENS,
    SYSTEM,
    THINK_CLOSE,
    THINK_OPEN,
    USER,
)

_TOOLS_HEADER = (
    "<|system|>\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
)
_TOOLS_FOOTER = (
    "</tools>\n\nFor each function call, output the function name and arguments within the "
    "following XML format:\n<tool_call>{function-name}\n<arg_key>{arg-key-1}</arg_key>\n"
    "<arg_value>{arg-value-1}</arg_value>\n<arg_key>{arg-key-2}</arg_key>\n"
    "<arg_value>{arg-value-2}</arg_value>\n...\n</tool_call>"
)


def _jinja_str(value: Any) -> str:
    """What ``{{ value }}`` prints: ``str()``, with a missing value printing nothing."""
    return value if isinstance(value, str) else str(value)


def tojson(value: Any) -> str:
    """The template's ``tojson(ensure_ascii=False)``."""
    return json.dumps(value, ensure_ascii=False)


def visible_text(content: Any, *, present: bool = True) -> str:
    """The template's ``visible_text`` macro: strings as is, text parts of a list joined."""
    if not present:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence) or (
        not isinstance(content, Mapping) and hasattr(content, "__iter__")
    ):
        parts: list[str] = []
        for item in content:
            if isinstance(item, Mapping):
                if item.get("type") == "text" and "text" in item:
                    parts.append(_jinja_str(item["text"]))
            elif isinstance(item, str):
                parts.append(item)
        return "".join(parts)
    return _jinja_str(content)


def tool_call_arguments(raw: Any, *, name: str = "?") -> Mapping[str, Any]:
    """A tool call's arguments as a mapping (JSON text is parsed; invalid text is a ValueError)."""
    if raw is None or raw == "":
        return {}
    if isinstance(raw, Mapping):
        return raw
    if isinstance(raw, str):
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"tool call {name!r}: function.arguments must be valid JSON ({exc.msg}): {raw[:200]!r}"
            ) from None
        if not isinstance(parsed, dict):
            raise ValueError(
                f"tool call {name!r}: function.arguments must be a JSON object, got {raw[:200]!r}"
            )
        return parsed
    raise ValueError(
        f"tool call {name!r}: function.arguments must be a mapping or JSON text, "
        f"got {type(raw).__name__}"
    )


def format_tool_call(name: str, arguments: Mapping[str, Any]) -> str:
    """One call as the template renders it: string values raw, other values as JSON."""
    out = [f"\n{CALL_OPEN}{name}\n"]
    for key, value in arguments.items():
        shown = value if isinstance(value, str) else tojson(value)
        out.append(f"<arg_key>{_jinja_str(key)}</arg_key>\n<arg_value>{shown}</arg_value>\n")
    out.append(CALL_CLOSE)
    return "".join(out)


def _split_inline_reasoning(content: str) -> tuple[str, str]:
    before = content.split(THINK_CLOSE)[0].rstrip("\n").split(THINK_OPEN)[-1].lstrip("\n")
    after = content.split(THINK_CLOSE)[-1].lstrip("\n")
    return before, after


def _render_assistant(message: Mapping[str, Any], *, keep_reasoning: bool) -> str:
    content = visible_text(message.get("content"), present="content" in message)
    reasoning = ""
    given = message.get("reasoning_content")
    if isinstance(given, str):
        reasoning = given
    elif THINK_CLOSE in content:
        reasoning, content = _split_inline_reasoning(content)
    out = [ASSISTANT]
    if keep_reasoning and reasoning:
        out.append(f"\n{THINK_OPEN}{reasoning.strip()}{THINK_CLOSE}")
    else:
        out.append(f"\n{THINK_OPEN}{THINK_CLOSE}")
    if content.strip():
        out.append("\n" + content.strip())
    for call in message.get("tool_calls") or ():
        if not isinstance(call, Mapping):
            raise ValueError(f"a tool call must be a mapping, got {type(call).__name__}")
        function = call.get("function")
        target: Mapping[str, Any] = function if isinstance(function, Mapping) and function else call
        name = target.get("name")
        if not isinstance(name, str):
            raise ValueError(f"tool call without a name: {dict(call)!r}")
        out.append(format_tool_call(name, tool_call_arguments(target.get("arguments"), name=name)))
    return "".join(out)


def _render_tool(message: Mapping[str, Any], *, after_tool: bool) -> str:
    content = message.get("content")
    if isinstance(content, str):
        head = "" if after_tool else OBSERVATION
        return f"{head}\n<tool_response>\n{content}\n</tool_response>"
    if content is None or isinstance(content, str | bytes) or not hasattr(content, "__iter__"):
        raise ValueError(f"tool message content must be a string or a list, got {content!r}")
    out = [OBSERVATION]
    for item in content:
        shown = item.get("output", item) if isinstance(item, Mapping) else item
        out.append(f"\n<tool_response>\n{_jinja_str(shown)}\n</tool_response>")
    return "".join(out)


def _render_messages(
    messages: Sequence[Mapping[str, Any]], *, enable_thinking: bool, previous_role: str | None
) -> str:
    last_user = -1
    for index, message in enumerate(messages):
        if message.get("role") == "user":
            last_user = index
    out: list[str] = []
    prev = previous_role
    for index, message in enumerate(messages):
        role = message.get("role")
        if role == "user":
            text = visible_text(message.get("content"), present="content" in message)
            suffix = "" if enable_thinking or text.endswith(NOTHINK) else NOTHINK
            out.append(f"{USER}\n{text}{suffix}")
        elif role == "assistant":
            out.append(_render_assistant(message, keep_reasoning=index > last_user))
        elif role == "tool":
            out.append(_render_tool(message, after_tool=prev == "tool"))
        elif role == "system":
            text = visible_text(message.get("content"), present="content" in message)
            out.append(f"{SYSTEM}\n{text}")
        prev = role if isinstance(role, str) else None
    return "".join(out)


def generation_prompt(enable_thinking: bool = True) -> str:
    """The text the template appends for ``add_generation_prompt``: ``render(m, t)`` is
    ``render(m, t, add_generation_prompt=False) + generation_prompt()``, and the same holds for
    ``render_continuation``."""
    return ASSISTANT if enable_thinking else f"{ASSISTANT}\n{THINK_OPEN}{THINK_CLOSE}"


def tools_block(tools: Sequence[Mapping[str, Any]] | None) -> str:
    """The tools section ``render`` writes for ``tools`` (empty for none), to be rendered once
    for a tool list used on many prompts (``render_with_tools_block``)."""
    if not tools:
        return ""
    return "".join([_TOOLS_HEADER, *(tojson(tool) + "\n" for tool in tools), _TOOLS_FOOTER])


def render(
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] | None = None,
    *,
    enable_thinking: bool = True,
    add_generation_prompt: bool = True,
) -> str:
    """The GLM-4.5 prompt for ``messages`` (and ``tools``), as the published template renders it."""
    return render_with_tools_block(
        messages,
        tools_block(tools),
        enable_thinking=enable_thinking,
        add_generation_prompt=add_generation_prompt,
    )


def render_with_tools_block(
    messages: Sequence[Mapping[str, Any]],
    block: str,
    *,
    enable_thinking: bool = True,
    add_generation_prompt: bool = True,
) -> str:
    """``render`` with the tools section given as ``block`` (``tools_block(tools)``, rendered
    once for a tool list used on many prompts)."""
    out = [PROMPT_PREFIX, block]
    out.append(_render_messages(messages, enable_thinking=enable_thinking, previous_role=None))
    if add_generation_prompt:
        out.append(generation_prompt(enable_thinking))
    return "".join(out)


def render_messages(messages: Sequence[Mapping[str, Any]], *, enable_thinking: bool = True) -> str:
    """The messages' part of a prompt: ``render_with_tools_block(messages, block,
    add_generation_prompt=False)`` is ``PROMPT_PREFIX + block + render_messages(messages)``
    (the prompt's fixed start and its messages, encoded apart by token mode)."""
    return _render_messages(messages, enable_thinking=enable_thinking, previous_role=None)


def render_continuation(
    messages: Sequence[Mapping[str, Any]],
    *,
    after_stop: str | None,
    enable_thinking: bool = True,
    add_generation_prompt: bool = True,
) -> str:
    """Text to append to a token-mode context after the model's output for new ``messages``.

    The model's previous output ended with the stop token ``after_stop`` (one of
    ``STOP_TOKENS``, or ``None``). When that token is the role token the new messages open with
    (``<|observation|>`` before tool results, ``<|user|>`` before a user message) it is not
    repeated. For a history ``H`` whose last assistant turn was produced as text ``T`` (equal to
    the template's rendering of that turn) and stop ``S``::

        render(H[:-1]) + T + S + render_continuation(N, after_stop=S) == render(H + N)

    holds whenever ``N`` contains no user message. A new user message makes the template drop
    the reasoning of every earlier assistant turn, so a re-rendered prompt then differs from the
    append-only context (which keeps the reasoning the model actually produced).
    """
    if after_stop is not None and after_stop not in STOP_TOKENS:
        raise ValueError(f"after_stop must be one of {STOP_TOKENS} or None, got {after_stop!r}")
    text = _render_messages(messages, enable_thinking=enable_thinking, previous_role="assistant")
    if after_stop in (OBSERVATION, USER) and after_stop is not None and text.startswith(after_stop):
        text = text[len(after_stop) :]
    if add_generation_prompt:
        text += generation_prompt(enable_thinking)
    return text


def render_tool_result(content: str, *, after_stop: str | None) -> str:
    """``render_continuation`` of one tool message whose content is a string, without the
    generation prompt: the same text, written directly (a tool result appended after each
    model call). ``after_stop`` as there; any other value raises ``ValueError`` as there."""
    if after_stop == OBSERVATION:  # the model's stop token opened the observation already
        return f"\n<tool_response>\n{content}\n</tool_response>"
    if after_stop is not None and after_stop not in STOP_TOKENS:
        raise ValueError(f"after_stop must be one of {STOP_TOKENS} or None, got {after_stop!r}")
    return f"{OBSERVATION}\n<tool_response>\n{content}\n</tool_response>"


def format_assistant(
    reasoning: str | None,
    content: str,
    tool_calls: Sequence[tuple[str, Mapping[str, Any]]],
    *,
    thinking: bool = True,
) -> str:
    """The raw text GLM-4.5 emits for one turn, in the template's canonical form (no stop token).

    With ``thinking`` the turn opens with ``\\n<think>reasoning</think>`` (the template's form of
    an assistant turn); without it the prompt already ended with ``<think></think>`` and the
    output starts with the content. Content and reasoning are stripped, as the template does.
    """
    out: list[str] = []
    if thinking:
        out.append(f"\n{THINK_OPEN}{(reasoning or '').strip()}{THINK_CLOSE}")
    elif reasoning and reasoning.strip():
        raise ValueError("reasoning given with thinking=False: the prompt already closed <think>")
    if content.strip():
        out.append("\n" + content.strip())
    for name, arguments in tool_calls:
        out.append(format_tool_call(name, arguments))
    return "".join(out)
