"""Pausing a conversation for approval and bringing it back from its :class:`RunState`.

The conversation's counters that must go on across a pause (turns, record indices, usage,
elapsed time) and its model session's token context go into the state here, and come back out
into a new :class:`~agentkit.conversation.Conversation` on resume.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Protocol

from agentkit.approvals import PendingCall
from agentkit.messages import Message, ToolCall
from agentkit.models.base import ModelSession
from agentkit.run_state import RunState, TokenContext
from agentkit.trajectory.records import Trajectory, Usage

if TYPE_CHECKING:
    from agentkit.agent_base import AgentBase


class PausableConversation(Protocol):
    """The state of a conversation that a pause keeps and a resume puts back
    (:class:`~agentkit.conversation.Conversation` is one; this module does not import it)."""

    _session: ModelSession | None
    trajectory: Trajectory
    messages: list[Message]
    thinking: bool
    turn: int
    usage: Usage
    _started: bool
    _turn_limit: int
    _output_failures: int
    _step_index: int
    _calls_before: int
    _first_new: int
    _pauses: int
    _t0: float
    paused: RunState | None


def check_resumable(agent: AgentBase[Any, Any], state: RunState) -> None:
    """``ValueError`` if ``agent`` cannot go on with ``state`` (another mode, a missing tool)."""
    mode = "tokens" if agent.model.mode == "tokens" else "chat"
    if state.episode.mode != mode:
        raise ValueError(f"the run was paused in {state.episode.mode} mode, not {mode}")
    missing = sorted({p.tool for p in state.pending} - set(agent.tools_by_name))
    if missing:
        raise ValueError(f"the agent has no tool {', '.join(missing)} of the pending calls")


def paused_state(
    conv: PausableConversation,
    turn: int,
    calls: list[ToolCall],
    malformed: list[str],
    pending: list[PendingCall],
    finish_reason: str,
) -> RunState:
    """What ``conv`` needs to go on later, paused before ``turn``'s calls ran."""
    export = getattr(conv._session, "export_state", None)
    return RunState(
        episode=conv.trajectory.start,
        messages=list(conv.messages),
        thinking=conv.thinking,
        turn=turn,
        calls=calls,
        pending=pending,
        malformed=list(malformed),
        finish_reason=finish_reason,
        turns_done=conv.turn,
        turns_left=conv._turn_limit - conv.turn,
        output_failures=conv._output_failures,
        next_step_index=conv._step_index,
        calls_recorded=conv._calls_before + len(conv.trajectory.calls),
        first_new_message=conv._first_new,
        usage=conv.usage.model_copy(),
        elapsed_s=time.perf_counter() - conv._t0,
        pauses=conv._pauses,
        token_context=TokenContext.encode(export()) if callable(export) else None,
    )


def restore(conv: PausableConversation, state: RunState) -> None:
    """Put ``state``'s counters and token context back into a new ``conv``."""
    if state.token_context is not None:
        load = getattr(conv._session, "import_state", None)
        if not callable(load):
            raise ValueError("the model session cannot take the paused token context")
        load(state.token_context.exported())
    conv._started = True  # the episode start is in the store already
    conv.turn = state.turns_done
    conv._turn_limit = state.turns_done + state.turns_left
    conv._output_failures = state.output_failures
    conv._step_index = state.next_step_index
    conv._calls_before = state.calls_recorded
    conv._first_new = state.first_new_message
    conv._pauses = state.pauses
    conv.usage = state.usage.model_copy()
    conv._t0 = time.perf_counter() - state.elapsed_s
    conv.paused = state
