"""Typed events a run emits while it goes (``Agent.stream`` / ``event_handler``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from agentkit.messages import ToolCall
from agentkit.models.base import ModelDelta, StreamDeltaKind
from agentkit.tool import ToolOutcome
from agentkit.trajectory.records import Attempt, Usage

if TYPE_CHECKING:
    from agentkit.result import RunResult


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)


class ReasoningDelta(_Event):
    type: Literal["reasoning_delta"] = "reasoning_delta"
    turn: int
    text: str


class TextDelta(_Event):
    type: Literal["text_delta"] = "text_delta"
    turn: int
    text: str


class ToolCallStarted(_Event):
    """The model began writing a call (streaming only); arguments follow."""

    type: Literal["tool_call_started"] = "tool_call_started"
    turn: int
    index: int
    name: str


class ToolCallEvent(_Event):
    """A complete call, about to run."""

    type: Literal["tool_call"] = "tool_call"
    turn: int
    call: ToolCall


class ToolResultEvent(_Event):
    type: Literal["tool_result"] = "tool_result"
    turn: int
    call: ToolCall
    outcome: ToolOutcome


class ModelRetryEvent(_Event):
    """An attempt of the turn's model call failed (``attempt.cause`` says why).

    ``discard_partial``: deltas of this turn had already been emitted from the failed attempt;
    discard them, the next attempt (or the failure) starts the turn over. ``will_retry`` is
    false for the last attempt: the run then ends ``model_error``.
    """

    type: Literal["model_retry"] = "model_retry"
    turn: int
    attempt: Attempt
    discard_partial: bool = False
    will_retry: bool = True


class TurnEnd(_Event):
    type: Literal["turn_end"] = "turn_end"
    turn: int
    finish_reason: str
    usage: Usage


class FinalEvent(_Event):
    type: Literal["final"] = "final"
    result: Any  # RunResult; Any keeps the event model free of a circular import

    @property
    def run_result(self) -> RunResult[Any]:
        return self.result  # type: ignore[no-any-return]


RunEvent = (
    ReasoningDelta
    | TextDelta
    | ToolCallStarted
    | ToolCallEvent
    | ToolResultEvent
    | ModelRetryEvent
    | TurnEnd
    | FinalEvent
)


def delta_forwarder(
    emit: Callable[[RunEvent], Awaitable[None]], turn: int
) -> Callable[[ModelDelta], Awaitable[None]]:
    """Turn a model session's stream deltas into run events of ``turn``."""

    async def forward(delta: ModelDelta) -> None:
        if delta.kind == StreamDeltaKind.REASONING:
            await emit(ReasoningDelta(turn=turn, text=delta.text))
        elif delta.kind == StreamDeltaKind.CONTENT:
            await emit(TextDelta(turn=turn, text=delta.text))
        elif delta.kind == StreamDeltaKind.TOOL_CALL_START:
            await emit(ToolCallStarted(turn=turn, index=delta.index or 0, name=delta.name or ""))
        elif delta.kind == StreamDeltaKind.RETRY and delta.attempt is not None:
            attempt = delta.attempt
            await emit(
                ModelRetryEvent(
                    turn=turn,
                    attempt=attempt,
                    discard_partial=attempt.partial,
                    will_retry=attempt.backoff_s is not None,
                )
            )

    return forward
