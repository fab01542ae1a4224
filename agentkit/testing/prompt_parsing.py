"""Recover the conversation from a rendered GLM-4.5 prompt (token mode of the test server).

``/generate`` receives only token ids. To ask a scripted policy what to answer, the server
decodes them and reads the chat template's format back: the tools block, system, user and
assistant turns (reasoning, content, tool calls) and tool observations. Text that does not
follow the format is kept rather than rejected, so a policy can always look at ``prompt_text``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RecoveredPrompt", "parse_prompt"]

_PREFIX = "[gMASK]<sop>"
_ROLE_SPLIT = re.compile(r"(<\|system\|>|<\|user\|>|<\|assistant\|>|<\|observation\|>)")
_TOOLS_HEADER = "\n# Tools\n\n"
_NOTHINK = "/nothink"
_THINK_OFF_PROMPT = "\n<think></think>"
_CALL = re.compile(r"\n?<tool_call>(.*?)(?:\n(.*?))?</tool_call>", re.DOTALL)
_ARG = re.compile(r"<arg_key>(.*?)</arg_key>\s*<arg_value>(.*?)</arg_value>", re.DOTALL)
_RESPONSE_OPEN = "\n<tool_response>\n"
_RESPONSE_CLOSE = "\n</tool_response>"


@dataclass
class RecoveredPrompt:
    messages: list[dict[str, Any]] = field(default_factory=list)
    tools: list[dict[str, Any]] = field(default_factory=list)
    enable_thinking: bool = True
    assistant_prefix: str = ""
    ends_with_generation_prompt: bool = False
    problems: list[str] = field(default_factory=list)


def _parse_tools(body: str, problems: list[str]) -> list[dict[str, Any]]:
    start = body.find("<tools>\n")
    end = body.find("\n</tools>")
    if start < 0 or end < start:
        problems.append("tools block without <tools> section")
        return []
    tools: list[dict[str, Any]] = []
    for line in body[start + len("<tools>\n") : end].split("\n"):
        if not line.strip():
            continue
        try:
            tool = json.loads(line)
        except json.JSONDecodeError:
            problems.append(f"unreadable tool line: {line[:80]!r}")
            continue
        if isinstance(tool, dict):
            tools.append(tool)
    return tools


def _schema_types(tools: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for tool in tools:
        function = tool.get("function", tool)
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            continue
        parameters = function.get("parameters")
        properties = parameters.get("properties") if isinstance(parameters, dict) else None
        out[function["name"]] = properties if isinstance(properties, dict) else {}
    return out


def _value(raw: str, schema: Any) -> Any:
    declared = schema.get("type") if isinstance(schema, dict) else None
    if declared == "string" or (isinstance(declared, list) and "string" in declared):
        return raw
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return raw
    # Strings are written raw by the template; a JSON string literal here was typed by the model.
    return raw if isinstance(value, str) and declared is None else value


def _parse_assistant(body: str, schemas: dict[str, dict[str, Any]], turn: int) -> dict[str, Any]:
    reasoning: str | None = None
    rest = body
    if rest.startswith("\n<think>") and "</think>" in rest:
        end = rest.index("</think>")
        reasoning = rest[len("\n<think>") : end] or None
        rest = rest[end + len("</think>") :]
    first_call = rest.find("<tool_call>")
    content_part = rest if first_call < 0 else rest[:first_call]
    message: dict[str, Any] = {"role": "assistant", "content": content_part.strip()}
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    if first_call >= 0:
        calls = []
        for index, match in enumerate(_CALL.finditer(rest, first_call)):
            name = match.group(1).strip()
            properties = schemas.get(name, {})
            arguments = {
                key: _value(raw, properties.get(key))
                for key, raw in _ARG.findall(match.group(2) or "")
            }
            calls.append(
                {
                    "id": f"call_{turn}_{index}",
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
            )
        message["tool_calls"] = calls
    return message


def _parse_observation(body: str, call_ids: list[str], problems: list[str]) -> list[dict[str, Any]]:
    if not (body.startswith(_RESPONSE_OPEN) and body.endswith(_RESPONSE_CLOSE)):
        problems.append("observation not in <tool_response> form")
        return [{"role": "tool", "tool_call_id": "", "content": body}]
    inner = body[len(_RESPONSE_OPEN) : -len(_RESPONSE_CLOSE)]
    pieces = inner.split(_RESPONSE_CLOSE + _RESPONSE_OPEN)
    return [
        {
            "role": "tool",
            "tool_call_id": call_ids[index] if index < len(call_ids) else "",
            "content": piece,
        }
        for index, piece in enumerate(pieces)
    ]


def parse_prompt(text: str) -> RecoveredPrompt:
    """Read messages, tools and the thinking switch back from a rendered GLM-4.5 prompt."""
    out = RecoveredPrompt()
    if text.startswith(_PREFIX):
        text = text[len(_PREFIX) :]
    else:
        out.problems.append("prompt does not start with [gMASK]<sop>")
    parts = _ROLE_SPLIT.split(text)
    if parts[0]:
        out.problems.append(f"text before the first role token: {parts[0][:80]!r}")
    segments = list(zip(parts[1::2], parts[2::2], strict=True))
    schemas: dict[str, dict[str, Any]] = {}
    last_call_ids: list[str] = []
    nothink_users = 0
    users = 0
    for position, (role, body) in enumerate(segments):
        is_last = position == len(segments) - 1
        if role == "<|system|>":
            if position == 0 and body.startswith(_TOOLS_HEADER):
                out.tools = _parse_tools(body, out.problems)
                schemas = _schema_types(out.tools)
            else:
                out.messages.append({"role": "system", "content": body.removeprefix("\n")})
        elif role == "<|user|>":
            content = body.removeprefix("\n")
            users += 1
            if content.endswith(_NOTHINK):
                nothink_users += 1
                content = content[: -len(_NOTHINK)]
            out.messages.append({"role": "user", "content": content})
        elif role == "<|assistant|>":
            if is_last:
                out.ends_with_generation_prompt = True
                if body.startswith(_THINK_OFF_PROMPT):
                    out.enable_thinking = False
                    body = body[len(_THINK_OFF_PROMPT) :]
                out.assistant_prefix = body
            else:
                message = _parse_assistant(body, schemas, position)
                last_call_ids = [call["id"] for call in message.get("tool_calls", [])]
                out.messages.append(message)
        else:  # <|observation|>
            out.messages.extend(_parse_observation(body, last_call_ids, out.problems))
    if users and nothink_users == users:
        out.enable_thinking = False
    return out
