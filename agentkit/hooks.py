"""Hooks around every tool call: ``before_tool_call`` and ``after_tool_call`` on the Agent.

``before_tool_call(call, ctx)`` runs just before a call (after any approval decision) and
returns ``None`` or :class:`Allow` to go on, :class:`Deny` to refuse (the model sees the denial
as the call's observation), :class:`EditArguments` to run the call with other arguments, or
:class:`ShortCircuit` to answer without running the tool. ``after_tool_call(call, outcome, ctx)``
sees every outcome (short-circuited ones too) and may return a replacement :class:`ToolOutcome`.
Hooks may be sync or async. A hook that raises becomes the call's error outcome (``HookError``),
never an exception that ends the run.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentkit.approvals import ApprovalDecision, denied
from agentkit.messages import ToolCall
from agentkit.tool import (
    RunContext,
    Tool,
    ToolOutcome,
    ToolStatus,
    describe_exception,
    render_output,
    truncate,
)


class Allow(BaseModel):
    """Run the call as it is."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["allow"] = "allow"


class Deny(BaseModel):
    """Do not run the call; ``message`` is what the model is told."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["deny"] = "deny"
    message: str = ""


class EditArguments(BaseModel):
    """Run the call with ``arguments`` instead of the model's (they are validated as usual)."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["edit"] = "edit"
    arguments: dict[str, Any] = Field(default_factory=dict)


class ShortCircuit(BaseModel):
    """Answer the call with ``output`` (rendered like a tool's return value) without running
    the tool; ``error=True`` makes it an error observation."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    kind: Literal["short_circuit"] = "short_circuit"
    output: Any = ""
    error: bool = False


HookVerdict = Allow | Deny | EditArguments | ShortCircuit
BeforeToolCall = Callable[
    [ToolCall, RunContext[Any]], "HookVerdict | Awaitable[HookVerdict | None] | None"
]
AfterToolCall = Callable[
    [ToolCall, ToolOutcome, RunContext[Any]], "ToolOutcome | Awaitable[ToolOutcome | None] | None"
]


@dataclass
class CallGate:
    """What stands between a turn's calls and their tools: the decisions of a resumed approval
    and the agent's hooks."""

    before: BeforeToolCall | None = None
    after: AfterToolCall | None = None
    decisions: Mapping[str, ApprovalDecision] = field(default_factory=dict)

    @property
    def idle(self) -> bool:
        """No decisions and no hooks: every call goes straight to its tool."""
        return self.before is None and self.after is None and not self.decisions


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def hook_failed(hook: str, exc: Exception) -> ToolOutcome:
    message = f"{hook} hook failed: {describe_exception(exc)}"
    return ToolOutcome(
        status=ToolStatus.ERROR, output=f"Error: {message}", error=message, error_type="HookError"
    )


def short_circuit_outcome(tool: Tool, verdict: ShortCircuit) -> ToolOutcome:
    text = render_output(verdict.output)
    shown, cut = truncate(text, tool.max_output_chars)
    if verdict.error:
        return ToolOutcome(
            status=ToolStatus.ERROR,
            output=shown,
            error=text,
            error_type="ShortCircuit",
            raw_chars=len(text),
            truncated=cut,
        )
    return ToolOutcome(status=ToolStatus.OK, output=shown, raw_chars=len(text), truncated=cut)


async def _before(
    gate: CallGate, tool: Tool, call: ToolCall, ctx: RunContext[Any]
) -> tuple[ToolCall, ToolOutcome | None]:
    """Apply the ``before_tool_call`` hook: the call to run and, if it decided one, the outcome."""
    if gate.before is None:
        return call, None
    try:
        verdict = await _maybe_await(gate.before(call, ctx))
    except Exception as exc:
        return call, hook_failed("before_tool_call", exc)
    if verdict is None or isinstance(verdict, Allow):
        return call, None
    if isinstance(verdict, Deny):
        return call, denied(call.name, verdict.message, "the before_tool_call hook")
    if isinstance(verdict, EditArguments):
        return call.model_copy(
            update={"arguments": dict(verdict.arguments), "raw_arguments": None}
        ), None
    if isinstance(verdict, ShortCircuit):
        return call, short_circuit_outcome(tool, verdict)
    wrong = TypeError(
        f"returned {type(verdict).__name__}, not Allow/Deny/EditArguments/ShortCircuit"
    )
    return call, hook_failed("before_tool_call", wrong)


async def _after(
    gate: CallGate, call: ToolCall, outcome: ToolOutcome, ctx: RunContext[Any]
) -> ToolOutcome:
    if gate.after is None:
        return outcome
    try:
        replaced = await _maybe_await(gate.after(call, outcome, ctx))
    except Exception as exc:
        return hook_failed("after_tool_call", exc)
    if replaced is None:
        return outcome
    if not isinstance(replaced, ToolOutcome):
        wrong = TypeError(f"returned {type(replaced).__name__}, not a ToolOutcome or None")
        return hook_failed("after_tool_call", wrong)
    return replaced


async def gated_call(
    tool: Tool, call: ToolCall, ctx: RunContext[Any], gate: CallGate
) -> tuple[ToolCall, ToolOutcome]:
    """Run one call through its approval decision and the hooks. Returns the call as run (its
    arguments edited, if they were) and the outcome."""
    decision = gate.decisions.get(call.id)
    if decision is not None and decision.action == "deny":
        outcome = denied(call.name, decision.message, "the approver")
        return call, await _after(gate, call, outcome, ctx)
    if decision is not None and decision.action == "edit" and decision.arguments is not None:
        call = call.model_copy(
            update={"arguments": dict(decision.arguments), "raw_arguments": None}
        )
    call, decided = await _before(gate, tool, call, ctx)
    outcome = decided if decided is not None else await tool.call(call.arguments, ctx)
    return call, await _after(gate, call, outcome, ctx)
