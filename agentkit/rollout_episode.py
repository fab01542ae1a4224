"""One rollout episode and the types every rollout executor shares.

:class:`RolloutTask` (the task), :class:`Reward`, :class:`RolloutReport`, the progress bar,
:func:`complete_pairs` (what a store already holds, for resume) and :func:`run_episode` (one
sample of one task, scored and closed in the store). The single-process executor
(:mod:`agentkit.rollout`) and the Ray one (:mod:`agentkit.rollout_ray`) both build on these.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agentkit.agent import Agent
from agentkit.conversation import Conversation
from agentkit.progress import Progress as Progress  # re-exported (it moved)
from agentkit.result import RunResult, failure_attribution
from agentkit.rollout_rewards import Reward, RewardFn, score_episode
from agentkit.tool import describe_exception
from agentkit.trajectory.recorder import Recorder
from agentkit.trajectory.records import EpisodeStatus, FailureAttribution, Trajectory, Usage
from agentkit.trajectory.store import JsonlStore, read_store

__all__ = ["Reward", "RewardFn"]  # re-exported: they live in agentkit.rollout_rewards


class RolloutTask(BaseModel):
    """One task: the user prompt, its ground truth and whatever the tools need (``deps``)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    id: str
    prompt: str
    label: Any = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    deps: Any = Field(default=None, exclude=True)


AgentFactory = Callable[[RolloutTask], "Agent[Any, Any] | Awaitable[Agent[Any, Any]]"]
EpisodeFn = Callable[
    ["Agent[Any, Any]", RolloutTask, int, JsonlStore, "RewardFn | None"],
    Awaitable[tuple[str, str | None]],
]
"""One sample of one task into the store: ``(agent, task, sample_index, store, reward_fn)`` ->
``(episode_id, error)``, as :func:`run_episode` (the default: the task's prompt, sent once)."""


class EpisodeFailure(BaseModel):
    task_id: str
    sample_index: int
    error: str


class RolloutReport(BaseModel):
    """What a rollout did: planned, skipped as already complete, run, and what failed."""

    planned: int = 0
    skipped: int = 0
    ran: int = 0
    completed: int = 0
    failures: list[EpisodeFailure] = Field(default_factory=list)
    retried: list[EpisodeFailure] = Field(default_factory=list)
    """failed attempts run again within the rollout (the sample's final outcome is counted once)"""
    episode_ids: list[str] = Field(default_factory=list)
    elapsed_s: float = 0.0
    usage: Usage = Field(default_factory=Usage)
    """every episode run, retried attempts included: model calls (``requests``), tool calls,
    prompt/completion/cached tokens and ``cost`` (dollars; ``None`` when no agent had prices),
    summed from the episode ends written to the store (any ``episode_fn``)"""
    usage_episodes: int = 0
    """how many episode ends ``usage`` sums; on Ray, those of the workers that closed cleanly
    (a worker that died takes its tally with it: fewer than ``ran`` plus ``retried`` then)"""


def complete_pairs(path: str | Path, *, retry_infra: bool = True) -> set[tuple[str, int]]:
    """The (task_id, sample_index) pairs a store already holds finished episodes for.

    A ``cancelled`` episode (interrupted: SIGINT, a cancelled rollout) never counts as done;
    nor, with ``retry_infra``, does an infrastructure failure."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return set()
    done: set[tuple[str, int]] = set()
    for traj in read_store(path).finished:
        start = traj.start
        if start.task_id is None or start.sample_index is None:
            continue
        if counts_as_done(traj, retry_infra=retry_infra):
            done.add((start.task_id, start.sample_index))
    return done


def counts_as_done(traj: Trajectory, *, retry_infra: bool = True) -> bool:
    """Whether a recorded episode is done for a rollout (a resume does not run it again): it
    ended, and not cancelled, still running or awaiting approval, nor (with ``retry_infra``)
    by an infrastructure failure."""
    end = traj.end
    if end is None or end.status in (
        EpisodeStatus.CANCELLED,
        EpisodeStatus.RUNNING,
        EpisodeStatus.AWAITING_APPROVAL,
    ):
        return False
    return not (retry_infra and end.failure is FailureAttribution.INFRASTRUCTURE)


async def maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


def short_error(exc: BaseException) -> str:
    return describe_exception(exc)[:500]


def open_episode(
    agent: Agent[Any, Any],
    task: RolloutTask,
    sample_index: int,
    recorder: Recorder,
    *,
    group_id: str | None = None,
) -> Conversation[Any, Any]:
    """The conversation of one sample of ``task``, its start record filled (label, prompt)."""
    conv = agent.conversation(
        deps=task.deps,
        recorder=recorder,
        task_id=task.id,
        group_id=group_id or task.id,
        sample_index=sample_index,
        metadata=dict(task.metadata),
    )
    start = conv.trajectory.start
    start.label = task.label
    start.prompt_messages = (
        [{"role": "system", "content": start.instructions}] if start.instructions else []
    ) + [{"role": "user", "content": task.prompt}]
    return conv


async def close_scored(
    conv: Conversation[Any, Any],
    task: RolloutTask,
    result: RunResult[Any],
    reward_fn: RewardFn | None,
) -> str | None:
    """Score a finished run and close its episode; an error text when it failed for any reason
    (a failed run, one left awaiting approval, a reward function that raised or returned
    nonsense: each closed so that it stays out of training)."""
    if result.status is EpisodeStatus.FAILED:
        await conv.close_with(result)
        return result.error or "failed"
    if result.status is EpisodeStatus.AWAITING_APPROVAL:
        # nobody can approve inside a rollout: closed unfinished, never exported, rerun later
        await conv.close_with(result)
        return result.error or "awaiting approval"
    reward: Reward | None = None
    try:
        if reward_fn is not None:
            reward = await score_episode(reward_fn, task, result)
    except Exception as exc:
        # the verifier broke, not the policy: keep the episode out of training
        error = f"reward function failed: {short_error(exc)}"
        await conv.finish(
            status=result.status,
            output=result.output,
            failure=FailureAttribution.INFRASTRUCTURE,
            error=error,
            termination_reason="reward_error",
        )
        return error
    end = await conv.finish(
        status=result.status,
        output=result.output,
        error=result.error,
        failure=failure_attribution(result.status),
        termination_reason=result.status.value,
        reward=reward.value if reward else None,
        reward_components=reward.components if reward else None,
        turn_rewards=reward.turn_rewards if reward else None,
        tool_rewards=reward.tool_rewards if reward else None,
    )
    failed = end.failure is FailureAttribution.INFRASTRUCTURE
    return (result.error or result.status.value) if failed else None


async def run_episode(
    agent: Agent[Any, Any],
    task: RolloutTask,
    sample_index: int,
    store: JsonlStore,
    reward_fn: RewardFn | None,
    *,
    totals: Usage | None = None,
) -> tuple[str, str | None]:
    """Run one episode; returns its id and an error text if it failed for any reason.
    ``totals``: the episode's usage (with its cost) is added into it (a rollout no longer passes
    it: its report sums the episode ends written to the store, whatever ran the episode)."""
    conv = open_episode(agent, task, sample_index, store)
    result = await conv.send(task.prompt)  # never raises but cancellation
    if totals is not None:
        totals.add(result.usage)
    return conv.episode_id, await close_scored(conv, task, result, reward_fn)


async def close_all(agents: Iterable[Agent[Any, Any]]) -> None:
    for agent in agents:
        try:
            await agent.aclose()
        except Exception as exc:  # closing one must not keep the others open
            print(f"agentkit rollout: closing an agent failed: {short_error(exc)}", file=sys.stderr)
