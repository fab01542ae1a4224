"""Approvals: tool calls that wait for a person's decision before they run.

A tool built with ``requires_approval=True`` (or a predicate over the arguments) makes the run
stop before the turn's calls run: the run returns with status ``awaiting_approval`` and a
:class:`~agentkit.run_state.RunState` that names the :class:`PendingCall` s. Whoever decides
answers each pending call with an :class:`ApprovalDecision` (approve, deny with a message, or
edit the arguments), and ``Agent.resume(state, decisions)`` goes on, in this process or another.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agentkit.messages import ToolCall
from agentkit.tool import Tool, ToolOutcome, ToolStatus


class PendingCall(BaseModel):
    """A call of the model that waits for a decision: its id, tool, arguments and why."""

    model_config = ConfigDict(frozen=True)

    id: str
    tool: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    reason: str = ""


class ApprovalDecision(BaseModel):
    """The decision on one pending call (``call_id``).

    ``approve``: run it as the model wrote it. ``deny``: do not run it; the model sees
    ``message`` as the call's (error) observation. ``edit``: run it with ``arguments`` instead.
    """

    model_config = ConfigDict(frozen=True)

    call_id: str
    action: Literal["approve", "deny", "edit"]
    message: str = ""
    arguments: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _edit_has_arguments(self) -> Self:
        if self.action == "edit" and self.arguments is None:
            raise ValueError("an 'edit' decision needs the new arguments")
        return self

    @classmethod
    def approve(cls, call_id: str) -> ApprovalDecision:
        return cls(call_id=call_id, action="approve")

    @classmethod
    def deny(cls, call_id: str, message: str = "") -> ApprovalDecision:
        return cls(call_id=call_id, action="deny", message=message)

    @classmethod
    def edit(cls, call_id: str, arguments: Mapping[str, Any]) -> ApprovalDecision:
        return cls(call_id=call_id, action="edit", arguments=dict(arguments))


Decisions = Mapping[str, ApprovalDecision] | Iterable[ApprovalDecision]


def pending_approvals(calls: Sequence[ToolCall], tools: Mapping[str, Tool]) -> list[PendingCall]:
    """The calls of a turn that need approval (badly written calls and unknown tools never run,
    so they need none)."""
    pending: list[PendingCall] = []
    for call in calls:
        target = tools.get(call.name)
        if call.parse_error is not None or target is None:
            continue
        reason = target.needs_approval(call.arguments)
        if reason is not None:
            pending.append(
                PendingCall(
                    id=call.id, tool=call.name, arguments=dict(call.arguments), reason=reason
                )
            )
    return pending


def check_decisions(
    pending: Sequence[PendingCall], decisions: Decisions
) -> dict[str, ApprovalDecision]:
    """``decisions`` by call id; ``ValueError`` unless every pending call has exactly one and
    none names a call that is not pending."""
    items = list(decisions.values()) if isinstance(decisions, Mapping) else list(decisions)
    by_id: dict[str, ApprovalDecision] = {}
    for decision in items:
        if not isinstance(decision, ApprovalDecision):
            raise TypeError(
                f"a decision must be an ApprovalDecision, not {type(decision).__name__}"
            )
        if decision.call_id in by_id:
            raise ValueError(f"two decisions for the call {decision.call_id!r}")
        by_id[decision.call_id] = decision
    wanted = {p.id for p in pending}
    unknown = sorted(set(by_id) - wanted)
    if unknown:
        raise ValueError(f"decisions for calls that are not pending: {', '.join(unknown)}")
    missing = [p.id for p in pending if p.id not in by_id]
    if missing:
        raise ValueError(f"no decision for the pending call(s) {', '.join(missing)}")
    return by_id


def denied(name: str, message: str, by: str) -> ToolOutcome:
    """The observation for a call that was refused (not run)."""
    why = f": {message}" if message else ""
    text = f"the call to {name!r} was denied by {by}{why}"
    return ToolOutcome(
        status=ToolStatus.DENIED, output=f"Error: {text}", error=text, error_type="Denied"
    )
