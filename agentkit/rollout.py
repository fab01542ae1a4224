"""Rollouts: run groups of samples per task (GRPO groups) into a trajectory store.

:func:`rollout` runs ``n_per_task`` episodes of every task with at most ``concurrency`` at a
time, scores each with ``reward_fn`` and closes it in the store with its reward. One failing
episode never stops the batch: an exception becomes an infrastructure failure in the record.
Rerunning the same rollout on the same store skips the (task, sample) pairs already finished,
so a killed or interrupted rollout resumes where it stopped: episodes left unfinished, closed as
``cancelled`` (SIGINT, cancellation) or failed for infrastructure reasons are run again.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any, Literal

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from agentkit.agent import Agent
from agentkit.rollout_episode import (
    AgentFactory,
    EpisodeFailure,
    EpisodeFn,
    Progress,
    Reward,
    RewardFn,
    RolloutReport,
    RolloutTask,
    close_all,
    complete_pairs,
    maybe_await,
    run_episode,
    short_error,
)
from agentkit.trajectory.records import RunManifest, Usage
from agentkit.trajectory.store import FsyncPolicy, JsonlStore

__all__ = [
    "AgentFactory",
    "EpisodeFailure",
    "Executor",
    "Progress",
    "Reward",
    "RewardFn",
    "RolloutReport",
    "RolloutTask",
    "complete_pairs",
    "rollout",
]

Executor = Literal["local", "ray"]


async def rollout(
    agent_factory: AgentFactory,
    tasks: Iterable[RolloutTask],
    n_per_task: int = 1,
    concurrency: int = 8,
    reward_fn: RewardFn | None = None,
    store: JsonlStore | str | Path = "rollout.jsonl",
    *,
    fsync: FsyncPolicy | str = FsyncPolicy.EPISODE,
    progress: bool | IO[str] = True,
    retry_infra: bool = True,
    metadata: dict[str, Any] | None = None,
    close_agents: bool = False,
    executor: Executor = "local",
    ray_options: dict[str, Any] | None = None,
    max_sample_retries: int = 2,
    episode_fn: EpisodeFn = run_episode,
) -> RolloutReport:
    """Run ``n_per_task`` samples of every task (one GRPO group per task) into ``store``.

    ``executor="ray"`` runs the same pairs on Ray worker actors instead (``store`` is then a
    sharded store folder; ``concurrency`` is the episodes in flight per worker; ``ray_options``
    go to :func:`agentkit.rollout_ray.ray_rollout`: ``address``, ``workers``,
    ``max_worker_restarts``, ``actor_options``, ``init_options``). Workers make and close
    their own agents.

    ``agent_factory(task)`` gives the agent for an episode (it may return one shared agent).
    With ``close_agents`` every agent it gave is closed at the end, however the rollout ends
    (the ``agentkit rollout`` command does this); else closing them is the caller's job.
    ``reward_fn(task, result)`` returns a float, a :class:`Reward` or ``None``; it may be async.
    Pairs (task, sample) already finished in the store are skipped (infrastructure failures
    are run again unless ``retry_infra=False``; cancelled episodes always are).

    A sample that fails for infrastructure reasons (the model server, the runtime, a reward
    function that raised) is run again within the run, up to ``max_sample_retries`` more
    times, so one transient failure does not leave its GRPO group uneven; every attempt stays
    in the store (the export keeps the last one of a sample) and each retry is listed in
    ``report.retried``. Every episode records ``group_size`` (``n_per_task``) in its metadata,
    which the exports' group policy reads (:mod:`agentkit.trajectory.groups`).
    """
    _check_arguments(n_per_task, concurrency, max_sample_retries, executor)
    if executor == "ray":
        if isinstance(store, JsonlStore):
            raise ValueError("executor='ray' writes a sharded store: pass its folder path")
        from agentkit.rollout_ray import ray_rollout

        return await ray_rollout(
            agent_factory, tasks, n_per_task, reward_fn, store,
            in_flight_per_worker=concurrency, fsync=fsync, progress=progress,
            retry_infra=retry_infra, metadata=metadata, max_sample_retries=max_sample_retries,
            episode_fn=episode_fn, **(ray_options or {}),
        )  # fmt: skip
    t0 = time.perf_counter()
    path = store.path if isinstance(store, JsonlStore) else Path(store)
    jobs, planned = _plan_jobs(tasks, n_per_task, path, retry_infra)
    report = RolloutReport(planned=planned, skipped=planned - len(jobs))
    sink = store if isinstance(store, JsonlStore) else JsonlStore(path, fsync=fsync)
    bar = Progress(
        len(jobs),
        stream=progress if not isinstance(progress, bool) else None,
        enabled=progress is not False,
    )
    run = _Workers(agent_factory, reward_fn, sink, report, bar, max_sample_retries, episode_fn)
    usage_before, ended_before = sink.usage.model_copy(), sink.episodes_ended
    try:
        if jobs and _only_blank(path):
            await _write_manifest(run, jobs[0][0], n_per_task, metadata)
        await _run_jobs(run, jobs, concurrency)
    finally:
        if close_agents:
            with anyio.CancelScope(shield=True):
                await close_all(run.agents.values())
        if sink is not store:
            sink.close()
    report.usage = _usage_since(usage_before, sink.usage)
    report.usage_episodes = sink.episodes_ended - ended_before
    report.elapsed_s = time.perf_counter() - t0
    return report


def _usage_since(before: Usage, now: Usage) -> Usage:
    """What a store's tally gained since ``before`` (a store passed in may hold earlier runs)."""
    counts = {name: getattr(now, name) - getattr(before, name) for name in _COUNTS}
    cost = None if now.cost is None else now.cost - (before.cost or 0.0)
    return Usage(**counts, cost=cost)


_COUNTS = [name for name, field in Usage.model_fields.items() if field.annotation is int]


Job = tuple[RolloutTask, int]


def _check_arguments(
    n_per_task: int, concurrency: int, max_sample_retries: int, executor: str
) -> None:
    if n_per_task < 1 or concurrency < 1:
        raise ValueError("n_per_task and concurrency must be at least 1")
    if max_sample_retries < 0:
        raise ValueError("max_sample_retries must be at least 0")
    if executor not in ("local", "ray"):
        raise ValueError(f"executor must be 'local' or 'ray', got {executor!r}")


def _plan_jobs(
    tasks: Iterable[RolloutTask], n_per_task: int, path: Path, retry_infra: bool
) -> tuple[list[Job], int]:
    """The (task, sample) pairs still to run, and how many pairs the rollout has in all."""
    task_list: Sequence[RolloutTask] = [_with_group_size(t, n_per_task) for t in tasks]
    ids = [t.id for t in task_list]
    if len(set(ids)) != len(ids):
        raise ValueError("task ids must be unique (they name the GRPO groups)")
    done = complete_pairs(path, retry_infra=retry_infra)
    jobs = [(task, k) for task in task_list for k in range(n_per_task) if (task.id, k) not in done]
    return jobs, len(task_list) * n_per_task


async def _write_manifest(
    run: _Workers, first: RolloutTask, n_per_task: int, metadata: dict[str, Any] | None
) -> None:
    """A new store opens with the run's manifest (model, mode, metadata)."""
    agent = await run.agent(first)
    run.sink.write(
        RunManifest(
            model=agent.model.name,
            mode="tokens" if agent.model.mode == "tokens" else "chat",
            metadata={"n_per_task": n_per_task, **(metadata or {})},
        )
    )


async def _run_jobs(run: _Workers, jobs: list[Job], concurrency: int) -> None:
    """Run every job on at most ``concurrency`` workers pulling from one queue."""
    send, receive = anyio.create_memory_object_stream[Job](len(jobs) or 1)
    for job in jobs:
        send.send_nowait(job)
    send.close()
    async with receive, anyio.create_task_group() as tg:
        for _ in range(min(concurrency, max(len(jobs), 1))):
            tg.start_soon(run.work, receive)


class _Workers:
    """What the rollout's workers share: the factory, the store, the report and the agents."""

    def __init__(
        self,
        factory: AgentFactory,
        reward_fn: RewardFn | None,
        sink: JsonlStore,
        report: RolloutReport,
        bar: Progress,
        max_retries: int = 0,
        episode_fn: EpisodeFn = run_episode,
    ) -> None:
        self.factory = factory
        self.episode_fn = episode_fn
        self.max_retries = max_retries
        self.reward_fn = reward_fn
        self.sink = sink
        self.report = report
        self.bar = bar
        self.agents: dict[int, Agent[Any, Any]] = {}  # every agent the factory gave

    async def agent(self, task: RolloutTask) -> Agent[Any, Any]:
        agent: Agent[Any, Any] = await maybe_await(self.factory(task))
        self.agents.setdefault(id(agent), agent)
        return agent

    async def work(self, receive: MemoryObjectReceiveStream[Job]) -> None:
        async for task, k in receive:
            episode_id, error = await self.attempt(task, k)
            for _ in range(self.max_retries):
                if error is None:
                    break
                # the failed attempt stays in the store; its rerun replaces it in the exports
                self.report.retried.append(
                    EpisodeFailure(task_id=task.id, sample_index=k, error=error)
                )
                if episode_id:
                    self.report.episode_ids.append(episode_id)
                episode_id, error = await self.attempt(task, k)
            self._count(task, k, episode_id, error)

    async def attempt(self, task: RolloutTask, k: int) -> tuple[str, str | None]:
        """One attempt at sample ``k`` of ``task``: its episode id and the error, if any."""
        try:
            agent = await self.agent(task)
        except Exception as exc:
            return "", f"agent factory failed: {short_error(exc)}"
        try:
            return await self.episode_fn(agent, task, k, self.sink, self.reward_fn)
        except Exception as exc:  # e.g. the store itself failed (disk full)
            return "", f"episode failed: {short_error(exc)}"

    def _count(self, task: RolloutTask, k: int, episode_id: str, error: str | None) -> None:
        report = self.report
        report.ran += 1
        if episode_id:
            report.episode_ids.append(episode_id)
        if error is None:
            report.completed += 1
        else:
            report.failures.append(EpisodeFailure(task_id=task.id, sample_index=k, error=error))
        self.bar.advance(failed=error is not None)


def _with_group_size(task: RolloutTask, n_per_task: int) -> RolloutTask:
    """The task with its GRPO group size in the metadata each episode records."""
    return task.model_copy(update={"metadata": {**task.metadata, "group_size": n_per_task}})


def _only_blank(path: Path) -> bool:
    return path.stat().st_size == 0
