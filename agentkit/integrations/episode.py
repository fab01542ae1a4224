"""One episode for a trainer's rollout: run an agent on a task, score it, keep the trajectory.

The trainer plug-ins (:mod:`agentkit.integrations.slime`, :mod:`agentkit.integrations.verl`)
call the trainer-facing builders on the :class:`~agentkit.trajectory.records.Trajectory` this
returns. Failures are typed, as in :func:`agentkit.rollout.rollout`: a reward function that
raises closes the episode as an infrastructure failure (it stays out of training), and a sample
that failed for infrastructure reasons is run again up to ``max_retries`` times.
"""

from __future__ import annotations

import importlib
from typing import Any

from agentkit.agent import Agent
from agentkit.rollout_episode import RewardFn, RolloutTask, close_scored, open_episode
from agentkit.trajectory.exports import exclusion_reason
from agentkit.trajectory.recorder import MemoryRecorder, Recorder
from agentkit.trajectory.records import Trajectory


def load_object(path: str) -> Any:
    """``package.module:attribute`` (or ``package.module.attribute``) -> the object."""
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ValueError(f"expected 'package.module:attribute', got {path!r}")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


async def run_scored_episode(
    agent: Agent[Any, Any],
    task: RolloutTask,
    sample_index: int,
    reward_fn: RewardFn | None,
    *,
    recorder: Recorder | None = None,
    group_id: str | None = None,
) -> Trajectory:
    """Run ``task`` once, score it with ``reward_fn``, close it; the episode's trajectory
    (scored and closed exactly as :func:`agentkit.rollout.rollout` does)."""
    conv = open_episode(agent, task, sample_index, recorder or MemoryRecorder(), group_id=group_id)
    result = await conv.send(task.prompt)  # never raises but cancellation
    await close_scored(conv, task, result, reward_fn)
    return conv.trajectory


async def run_with_retries(
    agent: Agent[Any, Any],
    task: RolloutTask,
    sample_index: int,
    reward_fn: RewardFn | None,
    *,
    max_retries: int = 2,
    recorder: Recorder | None = None,
    group_id: str | None = None,
) -> list[Trajectory]:
    """Every attempt at the sample, last one last: failed attempts (infrastructure, a reward
    function that raised) are run again up to ``max_retries`` more times."""
    attempts: list[Trajectory] = []
    for _ in range(max_retries + 1):
        traj = await run_scored_episode(
            agent, task, sample_index, reward_fn, recorder=recorder, group_id=group_id
        )
        attempts.append(traj)
        if exclusion_reason(traj) is None:
            break
    return attempts
