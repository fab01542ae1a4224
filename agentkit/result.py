"""What a run returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from agentkit.messages import Message
from agentkit.trajectory.records import EpisodeStatus, Trajectory, Usage

OutputT = TypeVar("OutputT")


@dataclass
class RunResult(Generic[OutputT]):
    """The outcome of one ``run``/``send``: never an exception for model or tool trouble.

    ``status`` is ``completed`` when the model gave a final answer (validated when the agent has
    an ``output_type``); anything else is a partial result with the reason in ``status``/``error``.
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

    @property
    def ok(self) -> bool:
        return self.status is EpisodeStatus.COMPLETED

    @property
    def episode_id(self) -> str:
        return self.trajectory.episode_id
