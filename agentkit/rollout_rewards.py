"""Rewards of rollout episodes: the value, its components, per-turn and per-tool rewards.

A reward function gets the task and the run's result, and, when it takes a third argument,
the task's ``deps`` (the sandbox and whatever the tools used, still open), so it can e.g. run
the tests the agent wrote in the agent's sandbox. It may be async and may return a float, a
:class:`Reward` or ``None`` (no reward). Per-turn rewards are keyed by the model call's
``turn``, per-tool rewards by the tool call's id; keys the episode does not have are a bug of
the reward function, reported as such (the episode is then left out of training).
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from agentkit.result import RunResult

if TYPE_CHECKING:
    from agentkit.rollout_episode import RolloutTask

RewardFn = Callable[..., "float | Reward | Awaitable[float | Reward | None] | None"]
"""``(task, result)`` or ``(task, result, deps)`` -> a float, a :class:`Reward` or ``None``."""


class RewardError(ValueError):
    """The reward function returned something that does not fit the episode."""


class Reward(BaseModel):
    """A reward with its components (a reward function may also return a plain float).

    ``turn_rewards``: ``{turn: reward}`` for some turns (a turn is one model call and what it
    ran); ``tool_rewards``: ``{tool_call_id: reward}`` for some tool calls. They go to verl as
    ``turn_scores`` / ``tool_rewards`` and to slime's metadata, next to the episode reward.
    """

    value: float
    components: dict[str, Any] = Field(default_factory=dict)
    turn_rewards: dict[int, float] = Field(default_factory=dict)
    tool_rewards: dict[str, float] = Field(default_factory=dict)


def _takes_deps(fn: Callable[..., Any]) -> bool:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params):
        return True
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(1 for p in params if p.kind in positional) >= 3


def check_reward(reward: Reward, result: RunResult[Any]) -> Reward:
    """The reward, or :class:`RewardError` when it is not finite or names turns or tool calls
    the episode does not have."""
    values = [reward.value, *reward.turn_rewards.values(), *reward.tool_rewards.values()]
    if not all(math.isfinite(v) for v in values):
        raise RewardError("the reward holds a non-finite number")
    trajectory = result.trajectory
    turns = {c.turn for c in trajectory.calls}
    unknown_turns = sorted(set(reward.turn_rewards) - turns)
    if unknown_turns:
        raise RewardError(f"turn rewards for turns the episode does not have: {unknown_turns}")
    call_ids = {s.call.id for s in trajectory.steps if s.call is not None}
    call_ids |= {tc.id for c in trajectory.calls for tc in c.tool_calls}
    unknown_calls = sorted(set(reward.tool_rewards) - call_ids)
    if unknown_calls:
        raise RewardError(f"tool rewards for calls the episode does not have: {unknown_calls}")
    return reward


async def score_episode(
    reward_fn: RewardFn, task: RolloutTask, result: RunResult[Any]
) -> Reward | None:
    """Call the reward function (awaiting it when async) and check what it returned."""
    args: tuple[Any, ...] = (task, result, task.deps) if _takes_deps(reward_fn) else (task, result)
    raw = reward_fn(*args)
    if inspect.isawaitable(raw):
        raw = await raw
    if raw is None:
        return None
    if isinstance(raw, Reward):
        return check_reward(raw, result)
    if isinstance(raw, bool) or not isinstance(raw, numbers.Real):
        raise RewardError(
            f"a reward function returns a float or a Reward, not {type(raw).__name__}"
        )
    return check_reward(Reward(value=float(raw)), result)
