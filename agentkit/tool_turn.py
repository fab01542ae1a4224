"""The tool calls of one turn: run the runnable ones concurrently, answer the others at once.

A call the model wrote badly (``ToolCall.parse_error``: its arguments did not parse) is the
model's mistake: it is not run; its observation is the real parse error plus a hint, written for
the model's dialect, on how a well-formed call looks. A call to an unknown tool gets the list of
tools. Neither ends the episode.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio

from agentkit.dialects.repair import GLM45, JSON, repair_hint
from agentkit.events import RunEvent, ToolCallEvent
from agentkit.hooks import CallGate, gated_call
from agentkit.messages import ToolCall
from agentkit.tool import RunContext, Tool, ToolOutcome, ToolStatus, describe_exception

EventHandler = Callable[[RunEvent], Awaitable[None]]
MALFORMED = "MalformedToolCall"


def dialect_of(model: Any) -> str:
    """The dialect a model's calls are written in: its ``dialect`` attribute when it has one;
    else a chat backend's client-side parser, or ``"json"`` when the server parses the calls;
    else GLM-4.5 (token mode)."""
    dialect = getattr(model, "dialect", None)
    if isinstance(dialect, str) and dialect:
        return dialect
    if getattr(model, "mode", None) == "chat":
        parser = getattr(model, "client_parser", None)
        return parser if isinstance(parser, str) and parser else JSON
    return GLM45


def malformed_call(call: ToolCall, dialect: str) -> ToolOutcome:
    """The observation for a call whose arguments did not parse (the call is not run)."""
    problem = call.parse_error or "the call could not be parsed"
    target = f"to {call.name!r} " if call.name else ""
    text = f"Error: your call {target}was not run: {problem}. {repair_hint(dialect)}"
    return ToolOutcome(
        status=ToolStatus.INVALID_ARGUMENTS, output=text, error=problem, error_type=MALFORMED
    )


def malformed_text(problem: str, dialect: str) -> ToolOutcome:
    """The observation for call markup that gave no call at all (token mode's parser)."""
    text = f"Error: your tool call could not be parsed ({problem}). {repair_hint(dialect)}"
    return ToolOutcome(
        status=ToolStatus.INVALID_ARGUMENTS, output=text, error=problem, error_type=MALFORMED
    )


def unknown_tool(name: str, available: Sequence[str]) -> ToolOutcome:
    names = ", ".join(sorted(available)) or "none"
    message = f"unknown tool {name!r}; available tools: {names}"
    return ToolOutcome(
        status=ToolStatus.UNKNOWN_TOOL,
        output=f"Error: {message}",
        error=message,
        error_type="UnknownTool",
    )


def cancelled() -> ToolOutcome:
    return ToolOutcome(
        status=ToolStatus.CANCELLED,
        output="Error: the run was cancelled before this call finished",
        error="cancelled",
    )


def crashed(tool: Tool, exc: Exception) -> ToolOutcome:
    """A tool object whose ``call`` raised instead of returning an outcome."""
    message = f"tool {tool.name!r} failed: {describe_exception(exc)}"
    return ToolOutcome(
        status=ToolStatus.ERROR, output=f"Error: {message}", error=message, error_type="ToolCrash"
    )


class TurnCalls:
    """The calls of one turn with their outcomes and start times, filled in as they finish (so
    a cancelled turn still knows which calls had finished). ``ran[i]`` is call ``i`` as it
    was run (its arguments edited by an approval decision or a hook, if they were)."""

    def __init__(
        self, calls: Sequence[ToolCall], dialect: str, gate: CallGate | None = None
    ) -> None:
        self.calls = list(calls)
        self.ran = list(calls)
        self.gate = gate or CallGate()
        self.outcomes: list[ToolOutcome | None] = [None] * len(self.calls)
        self.started_at = [0.0] * len(self.calls)
        for i, call in enumerate(self.calls):
            if call.parse_error is not None:
                self.started_at[i] = time.time()
                self.outcomes[i] = malformed_call(call, dialect)

    def finished(self, i: int) -> ToolOutcome:
        outcome = self.outcomes[i]
        return outcome if outcome is not None else cancelled()

    async def run(
        self,
        tools: dict[str, Tool],
        make_context: Callable[[ToolCall], RunContext[Any]],
        emit: EventHandler | None,
        turn: int,
        max_parallel: int | None,
    ) -> None:
        """Run every call without an outcome yet, at most ``max_parallel`` at a time."""
        pending = [i for i, outcome in enumerate(self.outcomes) if outcome is None]
        limiter = (
            anyio.CapacityLimiter(max_parallel)
            if max_parallel and max_parallel < len(pending)
            else None
        )

        async def run_one(i: int) -> None:
            if limiter is None:
                await self._run_call(i, tools, make_context, emit, turn)
            else:
                async with limiter:
                    await self._run_call(i, tools, make_context, emit, turn)

        if len(pending) == 1:
            await run_one(pending[0])
        elif pending:
            async with anyio.create_task_group() as tg:
                for i in pending:
                    tg.start_soon(run_one, i)

    async def _run_call(
        self,
        i: int,
        tools: dict[str, Tool],
        make_context: Callable[[ToolCall], RunContext[Any]],
        emit: EventHandler | None,
        turn: int,
    ) -> None:
        call = self.calls[i]
        self.started_at[i] = time.time()
        if emit is not None:
            await emit(ToolCallEvent(turn=turn, call=call))
        target = tools.get(call.name)
        if target is None:
            self.outcomes[i] = unknown_tool(call.name, list(tools))
            return
        try:
            self.ran[i], self.outcomes[i] = await gated_call(
                target, call, make_context(call), self.gate
            )
        except anyio.get_cancelled_exc_class():
            raise
        except Exception as exc:  # Tool.call guards itself; a subclass may not
            self.outcomes[i] = crashed(target, exc)
