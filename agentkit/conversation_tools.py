"""Running one turn's tool calls for a conversation and appending their results.

The calls run concurrently (through the approval decisions and hooks of the turn's
:class:`~agentkit.hooks.CallGate`); their results are appended to the conversation and recorded
in call order, then an observation for each piece of malformed call markup. A cancelled turn
still appends and records what had finished (and a ``cancelled`` outcome for the rest).
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import anyio

from agentkit.agent_base import FINAL_RESULT_TOOL as FINAL_RESULT_TOOL
from agentkit.agent_base import AgentBase
from agentkit.events import ToolResultEvent
from agentkit.final_answer import final_from_outcome
from agentkit.hooks import CallGate
from agentkit.messages import Message, ToolCall, tool_result
from agentkit.step_records import tool_step
from agentkit.tool import RunContext, ToolOutcome
from agentkit.tool_turn import EventHandler, TurnCalls, cancelled, crashed, malformed_text
from agentkit.trajectory.recorder import Record, Recorder
from agentkit.trajectory.records import Trajectory, Usage


class ToolTurnHost(Protocol):
    """What running a turn's tools needs of its conversation
    (:class:`~agentkit.conversation.Conversation` is one; this module does not import it)."""

    @property
    def agent(self) -> AgentBase[Any, Any]: ...

    @property
    def deps(self) -> Any: ...

    @property
    def episode_id(self) -> str: ...

    @property
    def usage(self) -> Usage: ...

    @property
    def messages(self) -> list[Message]: ...

    @property
    def trajectory(self) -> Trajectory: ...

    @property
    def recorders(self) -> list[Recorder]: ...

    @property
    def _dialect(self) -> str: ...

    def _next_step(self) -> int: ...

    async def _record(self, item: Record, *, strict: bool = True) -> None: ...


async def run_tools(
    conv: ToolTurnHost,
    calls: list[ToolCall],
    malformed: list[str],
    turn: int,
    listener: EventHandler | None,
    gate: CallGate,
) -> Any:
    """Run the calls concurrently; append results in call order. Returns the validated final
    output if the model called ``final_result`` successfully, else ``None``.

    One well-formed call of a known tool, with no hooks, decisions or event listener (the
    common turn), is run here directly: the same outcome, records and messages as through
    :class:`~agentkit.tool_turn.TurnCalls`, without its bookkeeping and coroutine layers."""
    agent = conv.agent
    if len(calls) == 1 and not malformed and listener is None and gate.idle:
        call = calls[0]
        target = agent.tools_by_name.get(call.name)
        if target is not None and call.parse_error is None:
            started = time.time()
            episode_id = conv.episode_id
            ctx = RunContext(deps=conv.deps, run_id=episode_id, turn=turn, call_id=call.id)
            try:
                outcome = await target.call(call.arguments, ctx)
            except anyio.get_cancelled_exc_class():
                with anyio.CancelScope(shield=True):
                    await append_tool_result(
                        conv, call, cancelled(), turn, started, call, strict=False
                    )
                raise
            except Exception as exc:  # Tool.call guards itself; a subclass may not
                outcome = crashed(target, exc)
            record = _append_result(conv, call, outcome, turn, started, call, episode_id)
            if conv.recorders:
                await conv._record(record)
            if call.name == FINAL_RESULT_TOOL and outcome.ok:
                return final_from_outcome(agent.output_type, outcome)
            return None
    turn_calls = TurnCalls(calls, conv._dialect, gate)

    def context(call: ToolCall) -> RunContext[Any]:
        return RunContext(deps=conv.deps, run_id=conv.episode_id, turn=turn, call_id=call.id)

    try:
        await turn_calls.run(agent.tools_by_name, context, listener, turn, agent.max_parallel_tools)
    except anyio.get_cancelled_exc_class():
        with anyio.CancelScope(shield=True):
            for i, call in enumerate(calls):
                outcome, started, ran = (
                    turn_calls.finished(i),
                    turn_calls.started_at[i],
                    turn_calls.ran[i],
                )
                await append_tool_result(conv, call, outcome, turn, started, ran, strict=False)
        raise
    final: Any = None
    for i, call in enumerate(calls):
        outcome = turn_calls.finished(i)
        started, ran = turn_calls.started_at[i], turn_calls.ran[i]
        await append_tool_result(conv, call, outcome, turn, started, ran)
        if listener is not None:
            await listener(ToolResultEvent(turn=turn, call=call, outcome=outcome))
        if call.name == FINAL_RESULT_TOOL and outcome.ok:
            final = final_from_outcome(agent.output_type, outcome)
    for problem in malformed:
        outcome = malformed_text(problem, conv._dialect)
        placeholder = ToolCall(id="", name="", arguments={})
        await append_tool_result(conv, placeholder, outcome, turn, time.time())
        if listener is not None:
            await listener(ToolResultEvent(turn=turn, call=placeholder, outcome=outcome))
    return final


async def append_tool_result(
    conv: ToolTurnHost,
    call: ToolCall,
    outcome: ToolOutcome,
    turn: int,
    started_at: float,
    ran: ToolCall | None = None,
    *,
    strict: bool = True,
) -> None:
    """Append the result the model sees (answering ``call``) and record the step with the
    call as it ran (``ran``: its arguments edited by a decision or a hook, if they were)."""
    record = _append_result(conv, call, outcome, turn, started_at, ran)
    if conv.recorders:
        await conv._record(record, strict=strict)


def _append_result(
    conv: ToolTurnHost,
    call: ToolCall,
    outcome: ToolOutcome,
    turn: int,
    started_at: float,
    ran: ToolCall | None,
    episode_id: str | None = None,
) -> Record:
    """:func:`append_tool_result` but the recording: the message, the usage and the step
    (returned, for the recorders); ``episode_id``: the conversation's, if already read."""
    conv.usage.add_tool_calls(1 if call.name else 0)
    # every tool result gives the same fields: they share one fields set
    conv.messages.append(tool_result(call.id, call.name, outcome.output, not outcome.ok))
    if episode_id is None:
        episode_id = conv.episode_id
    record = tool_step(episode_id, conv._next_step(), turn, call, outcome, started_at, ran)
    conv.trajectory.steps.append(record)
    return record
