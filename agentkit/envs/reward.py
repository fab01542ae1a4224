"""tau-bench's reward: the final database against the gold one, and the required outputs.

1. ``r_actions``: the hash of the episode's database equals the hash after replaying the task's
   gold actions (terminating tools skipped) on a fresh database.
2. ``r_outputs`` (only when the task lists outputs): each output, lowercased, is a substring of
   some message the agent sent the user, lowercased with its commas removed.

The reward is 1.0 when both hold and 0.0 otherwise; :class:`Reward` keeps the breakdown.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from .domain import EpisodeState
from .tasks import RESPOND_ACTION

SUCCESS_TOLERANCE = 1e-6


class Reward(BaseModel):
    reward: float
    r_actions: bool
    data_hash: str
    gt_data_hash: str
    r_outputs: float | None = None
    outputs: dict[str, bool] = Field(default_factory=dict)

    @property
    def success(self) -> bool:
        return abs(self.reward - 1.0) <= SUCCESS_TOLERANCE


def outputs_found(outputs: list[str], responses: list[str]) -> dict[str, bool]:
    said = [text.lower().replace(",", "") for text in responses]
    return {output: any(output.lower() in text for text in said) for output in outputs}


def compute_reward(state: EpisodeState) -> Reward:
    """Score an episode whose ``state.task`` is set."""
    task = state.task
    if task is None:
        raise ValueError("the episode has no task to score against")
    data_hash = state.db_hash()
    gt_hash = state.domain.gold_hash(task, state.task_index)
    r_actions = data_hash == gt_hash
    reward = 1.0 if r_actions else 0.0
    result = Reward(reward=reward, r_actions=r_actions, data_hash=data_hash, gt_data_hash=gt_hash)
    if task.outputs:
        responses = [
            str(a.kwargs.get("content", "")) for a in state.actions if a.name == RESPOND_ACTION
        ]
        found = outputs_found(task.outputs, responses)
        r_outputs = 1.0 if all(found.values()) else 0.0
        result.outputs = found
        result.r_outputs = r_outputs
        if r_outputs == 0.0:
            result.reward = 0.0
    return result
