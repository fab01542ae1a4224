"""What a run returns, and who is to blame when it did not complete."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from agentkit.messages import Message
from agentkit.trajectory.records import EpisodeStatus, FailureAttribution, Trajectory, Usage

if TYPE_CHECKING:
    from agentkit.run_state import RunState

OutputT = TypeVar("OutputT")

_POLICY_FAILURES = frozenset(
    {EpisodeStatus.MAX_TURNS, EpisodeStatus.OUTPUT_INVALID, EpisodeStatus.TRUNCATED}
)
_INFRASTRUCTURE_FAILURES = frozenset({EpisodeStatus.MODEL_ERROR, EpisodeStatus.FAILED})


def failure_attribution(status: EpisodeStatus) -> FailureAttribution | None:
    """The one place that decides who caused an unsuccessful episode.

    The policy caused running out of turns, an invalid final answer and a reply cut at the
    token limit (these stay in training data, with reward 0). The model server (``model_error``)
    and the runtime itself (``failed``: an unexpected error) are infrastructure, so the episode
    is left out of training and rerun on resume. Completed and cancelled episodes blame no one
    (a cancelled one is simply unfinished work: never exported, always rerun).
    """
    if status in _POLICY_FAILURES:
        return FailureAttribution.POLICY
    if status in _INFRASTRUCTURE_FAILURES:
        return FailureAttribution.INFRASTRUCTURE
    return None


@dataclass
class RunResult(Generic[OutputT]):
    """The outcome of one ``run``/``send``: never an exception for model or tool trouble.

    ``status`` is ``completed`` when the model gave a final answer (validated when the agent has
    an ``output_type``); anything else is a partial result with the reason in ``status``/``error``.
    ``awaiting_approval``: the run paused before calls that need approval; ``state`` is what
    ``Agent.resume(state, decisions)`` takes (JSON with ``state.model_dump_json()``).
    ``usage.cost`` is set when the agent has a price for its model. After a resume,
    ``trajectory`` holds the records written since the resume (the store has the episode).
    """

    status: EpisodeStatus
    output: OutputT | None
    text: str
    messages: list[Message]
    usage: Usage
    trajectory: Trajectory
    turns: int
    error: str | None = None
    new_messages: list[Message] = field(default_factory=list)
    state: RunState | None = None

    @property
    def awaiting_approval(self) -> bool:
        return self.status is EpisodeStatus.AWAITING_APPROVAL

    @property
    def ok(self) -> bool:
        return self.status is EpisodeStatus.COMPLETED

    @property
    def episode_id(self) -> str:
        return self.trajectory.episode_id

    @property
    def failure(self) -> FailureAttribution | None:
        """Who caused this result when it is not a success (see :func:`failure_attribution`)."""
        return failure_attribution(self.status)
