"""How to ask a 135M model for its next turn, from OpenAI-style messages.

Two things a small model cannot do are taken off its hands, and nothing else: it cannot judge
when a tool is needed, and it cannot read tool results in the ``tool`` role (it echoes them).
The runtime never reads the user's words: what to compute is always written by the model.

- The tools are listed in a compact form (a line per tool) instead of the Hermes JSON block:
  a third of the prompt tokens, and the same system prompt on every turn, so the KV cache of
  the call turn is reused by the answer turn.
- While tools are offered and none was called since the last user message, the turn is one
  call under :class:`~agentkit.models.grammar_reasoned.ReasonedCallConstraint` (the model names
  the tool and writes arithmetic arguments in a sentence, then the call is forced from it).
  ``tool_choice`` ``"required"`` or a named function narrows it; ``"none"`` skips it.
- After tool results the model writes one line of free text (:class:`FirstLine`). It may call
  again (a line that opens ``<tool_call>`` runs to its end and is parsed like any other call),
  up to ``MAX_CALLS_PER_QUESTION`` calls; its answer is checked against the last tool result by
  :func:`check_answer`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agentkit.dialects import hermes

from .grammar import Constraint
from .grammar_reasoned import FirstLine, ReasonedCallConstraint

MAX_CALLS_PER_QUESTION = 3
CALL_FORMAT = 'Call a tool with <tool_call>{"name": "...", "arguments": {...}}</tool_call>'


@dataclass(frozen=True)
class TurnPlan:
    """The prompt to send and the constraint to decode it with (``None``: free text)."""

    prompt: str
    constraint: Constraint | None


def compact_tools(tools: Sequence[Mapping[str, Any]]) -> str:
    """``Tools:`` and one line per tool: ``- name(arg, ...): description. arg: description``."""
    lines = ["Tools:"]
    for tool in tools:
        function = tool.get("function", tool)
        parameters = function.get("parameters") or {}
        properties: Mapping[str, Any] = parameters.get("properties") or {}
        line = f"- {function.get('name')}({', '.join(properties)})"
        if function.get("description"):
            line += f": {str(function['description']).strip()}"
        for key, schema in properties.items():
            if isinstance(schema, Mapping) and schema.get("description"):
                line += f" {key}: {str(schema['description']).strip()}"
        lines.append(line)
    lines.append(CALL_FORMAT)
    return "\n".join(lines)


def _with_tools(
    messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    out = [dict(m) for m in messages]
    if not tools:
        return out
    listing = compact_tools(tools)
    if out and out[0].get("role") == "system":
        out[0]["content"] = f"{str(out[0].get('content') or '').rstrip()}\n{listing}"
    else:
        out.insert(0, {"role": "system", "content": listing})
    return out


def plan_turn(
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] = (),
    *,
    tool_choice: str | Mapping[str, Any] = "auto",
) -> TurnPlan:
    """The next turn's prompt and constraint (see the module docstring)."""
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    called = any(
        m.get("role") == "assistant" and m.get("tool_calls") for m in messages[last_user + 1 :]
    )
    offered = list(tools) if tool_choice != "none" else []
    prompt = hermes.render(_with_tools(_restate_tool_results(messages, last_user), offered))
    if offered and not called:
        names = None
        if isinstance(tool_choice, Mapping):
            function = tool_choice.get("function", tool_choice)
            names = [str(function.get("name"))]
        return TurnPlan(prompt, ReasonedCallConstraint(offered, names=names))
    calls = sum(len(m.get("tool_calls") or ()) for m in messages[last_user + 1 :])
    return TurnPlan(prompt, FirstLine(calls=bool(offered) and calls < MAX_CALLS_PER_QUESTION))


@dataclass(frozen=True)
class AnswerCheck:
    """Whether a final answer states the last tool result (``ok``), and what it rests on."""

    ok: bool
    tool: str
    arguments: dict[str, Any]
    result: str

    def describe(self) -> str:
        call = f"{self.tool}({json.dumps(self.arguments, ensure_ascii=False)})"
        if self.ok:
            return f"the answer states the result of {call}: {self.result}"
        return f"the answer does not state the result of {call}: {self.result}"


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _states(answer: str, result: str) -> bool:
    """The answer states the result: a number must be the last number in the answer (``126``
    in "(17 + 25) * 3 = 126."), so a sum worked out wrongly after it does not pass; other
    results must appear as they are."""
    result = result.strip()
    if not result:
        return False
    if _NUMBER.fullmatch(result):
        numbers = _NUMBER.findall(answer.replace(",", ""))
        return bool(numbers) and numbers[-1] == result
    return result in answer


def _name_and_arguments(call: Mapping[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """An OpenAI-style call's name and arguments (None when they are not JSON)."""
    function = call.get("function", call)
    arguments = function.get("arguments") or {}
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            return str(function.get("name")), None
    return str(function.get("name")), dict(arguments)


def check_answer(messages: Sequence[Mapping[str, Any]], answer: str) -> AnswerCheck | None:
    """Check a final answer against the last tool result of this user turn (None without one).

    This checks the answer against the tool, not against the question: whether the call computed
    what was asked is the model's part, shown in ``describe()`` for the reader to judge.
    """
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    calls: dict[str, tuple[str, dict[str, Any]]] = {}
    last: tuple[str, dict[str, Any], str] | None = None
    for message in messages[last_user + 1 :]:
        if message.get("role") == "assistant":
            for call in message.get("tool_calls") or ():
                name, arguments = _name_and_arguments(call)
                if arguments is None:  # not JSON: kept as written
                    arguments = {"raw": call.get("function", call).get("arguments")}
                calls[str(call.get("id") or "")] = (name, arguments)
        elif message.get("role") == "tool":
            name, arguments = calls.get(str(message.get("tool_call_id") or ""), ("tool", {}))
            last = (name, arguments, str(message.get("content") or ""))
    if last is None:
        return None
    name, arguments, result = last
    return AnswerCheck(_states(answer, result), name, arguments, result.strip())


def repeats_a_call(messages: Sequence[Mapping[str, Any]], calls: Sequence[Any]) -> bool:
    """True if one of ``calls`` (``ToolCall``s) equals a call already made for this question."""
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    seen = set()
    for message in messages[last_user + 1 :]:
        for call in message.get("tool_calls") or () if message.get("role") == "assistant" else ():
            name, arguments = _name_and_arguments(call)
            if arguments is not None:
                seen.add((name, json.dumps(arguments, sort_keys=True)))
    return any((c.name, json.dumps(c.arguments, sort_keys=True)) in seen for c in calls)


def _call_text(function: Mapping[str, Any]) -> str:
    """``name(arguments)`` of a call as its result is restated: the tool's name and arguments."""
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments or {}, ensure_ascii=False)
    return f"The {function.get('name')} tool, called with {arguments},"


def _restate_tool_results(
    messages: Sequence[Mapping[str, Any]], last_user: int
) -> list[dict[str, Any]]:
    question = str(messages[last_user].get("content") or "") if last_user >= 0 else ""
    out: list[dict[str, Any]] = []
    results: list[str] = []
    names: dict[str, str] = {}
    for message in messages:
        role = message.get("role")
        if role == "tool":
            call_id = str(message.get("tool_call_id") or "")
            name = message.get("name") or names.get(call_id) or "tool"
            results.append(f"{name} returned: {message.get('content') or ''}")
            continue
        if results:
            out.append({"role": "user", "content": "\n".join(results)})
            results = []
        if role == "assistant" and message.get("tool_calls"):
            for call in message.get("tool_calls") or ():
                function = call.get("function", call)
                names[str(call.get("id") or "")] = _call_text(function)
            out.append(
                {
                    "role": "assistant",
                    "content": hermes.render([message], add_generation_prompt=False)
                    .removeprefix(f"{hermes.IM_START}assistant\n")
                    .removesuffix(f"{hermes.IM_END}\n"),
                }
            )
            continue
        out.append(dict(message))
    if results:
        results.append(f"Now answer my question: {question}")
        out.append({"role": "user", "content": "\n".join(results)})
    return out
