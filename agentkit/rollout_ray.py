"""Rollouts on Ray: the same (task, sample) pairs as :func:`agentkit.rollout.rollout`, spread over
Ray actors on any number of machines.

Each worker is an async Ray actor with its own event loop, agents (made on its node by the
agent factory) and crash-safe shard of one sharded store (:mod:`agentkit.trajectory.shards`).
The driver hands each worker at most ``in_flight_per_worker`` episodes at a time (back-pressure:
the queue stays on the driver) and collects results as they finish. A worker that dies
(SIGKILL, a lost node) loses nothing it recorded: its shard keeps every line written, its
unfinished episodes stay unfinished (so exports and resumes ignore them), the pairs it was
running go back to the queue (except one whose end its shard already holds: that episode counts,
as a resume would count it), and a replacement actor with a new shard takes its place (up to
``max_worker_restarts`` per worker). Resuming reads every shard, exactly as the single-process
rollout reads its store. GRPO groups stay whole whatever worker ran each sample: groups are
named by task, and exports read all shards as one store.

Ray is optional (``pip install 'agentkit[ray]'``); without an address a local Ray instance is
started for the rollout and stopped after it.
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import anyio
from pydantic import BaseModel, Field

from agentkit.rollout_episode import (
    AgentFactory,
    EpisodeFailure,
    EpisodeFn,
    Progress,
    RewardFn,
    RolloutReport,
    RolloutTask,
    close_all,
    complete_pairs,
    counts_as_done,
    maybe_await,
    run_episode,
    short_error,
)
from agentkit.trajectory.records import EpisodeStatus, FailureAttribution, RunManifest, Usage
from agentkit.trajectory.shards import ShardedStore
from agentkit.trajectory.store import FsyncPolicy, JsonlStore, read_store


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError("rollouts on Ray need Ray: pip install 'agentkit[ray]'") from exc
    return ray


class RayRolloutReport(RolloutReport):
    """A rollout report plus what the cluster did."""

    workers: int = 0
    worker_restarts: int = 0
    shards: list[str] = Field(default_factory=list)
    worker_cpu_s: list[float] = Field(default_factory=list)
    """CPU seconds each worker process that closed cleanly used (agents, tools, records)."""


class RolloutWorker:
    """The body of one Ray actor: agents, a shard, and episodes run on request."""

    def __init__(
        self,
        agent_factory: AgentFactory,
        reward_fn: RewardFn | None,
        shard: str,
        fsync: str,
        manifest_metadata: dict[str, Any],
        episode_fn: EpisodeFn = run_episode,
    ) -> None:
        self.agent_factory = agent_factory
        self.episode_fn = episode_fn
        self.reward_fn = reward_fn
        self.store = JsonlStore(shard, fsync=fsync)
        self.manifest_metadata = manifest_metadata
        self.agents: dict[int, Any] = {}
        self._manifest_written = False

    def pid(self) -> int:
        return os.getpid()

    async def run(self, task: RolloutTask, sample_index: int) -> tuple[str, str | None]:
        """Run one episode into this worker's shard: (episode id, error or None)."""
        try:
            agent = await maybe_await(self.agent_factory(task))
        except Exception as exc:
            return "", f"agent factory failed: {short_error(exc)}"
        self.agents.setdefault(id(agent), agent)
        if not self._manifest_written:
            self._manifest_written = True
            self.store.write(
                RunManifest(
                    model=agent.model.name,
                    mode="tokens" if agent.model.mode == "tokens" else "chat",
                    metadata=self.manifest_metadata,
                )
            )
        try:
            return await self.episode_fn(agent, task, sample_index, self.store, self.reward_fn)
        except Exception as exc:  # e.g. the shard's disk is full
            return "", f"episode failed: {short_error(exc)}"

    async def close(self) -> tuple[float, dict[str, Any], int]:
        """Close agents and shard; returns this process's CPU seconds so far, and the usage
        and count of the episode ends its shard holds from this worker."""
        await close_all(self.agents.values())
        self.store.close()
        return time.process_time(), self.store.usage.model_dump(), self.store.episodes_ended


@dataclass
class _Slot:
    """One worker as the driver sees it."""

    index: int
    actor: Any
    shard: Path
    generation: int = 0
    restarts: int = 0
    alive: bool = True


class _Cluster:
    """Starts, replaces and closes the worker actors of one rollout."""

    def __init__(
        self,
        ray: Any,
        store: ShardedStore,
        make_args: tuple[Any, ...],
        actor_options: dict[str, Any],
    ) -> None:
        self.ray = ray
        self.store = store
        self.make_args = make_args
        self.remote_cls = ray.remote(RolloutWorker).options(**actor_options)
        self.restarts = 0

    def start(self, index: int) -> _Slot:
        shard = self.store.add_shard(f"worker-{index}")
        return _Slot(index=index, actor=self._spawn(shard), shard=shard)

    def _spawn(self, shard: Path) -> Any:
        agent_factory, reward_fn, fsync, metadata, episode_fn = self.make_args
        return self.remote_cls.remote(
            agent_factory, reward_fn, str(shard), fsync, metadata, episode_fn
        )

    def replace(self, slot: _Slot) -> None:
        slot.shard = self.store.add_shard(f"worker-{slot.index}")
        slot.actor = self._spawn(slot.shard)
        slot.generation += 1
        slot.restarts += 1
        self.restarts += 1

    async def close(self, slots: Iterable[_Slot], report: RayRolloutReport) -> None:
        """Close every live worker; their CPU time and usage go into ``report``."""
        for slot in slots:
            if not slot.alive:
                continue
            try:
                cpu, usage, ended = await slot.actor.close.remote()
                report.worker_cpu_s.append(float(cpu))
                report.usage.add(Usage.model_validate(usage))
                report.usage_episodes += int(ended)
            except Exception as exc:  # a worker that died while closing has nothing to close
                print(
                    f"agentkit rollout: closing worker {slot.index}: {short_error(exc)}",
                    file=sys.stderr,
                )
            self.ray.kill(slot.actor)


async def ray_rollout(
    agent_factory: AgentFactory,
    tasks: Iterable[RolloutTask],
    n_per_task: int = 1,
    reward_fn: RewardFn | None = None,
    store: str | Path = "rollout.shards",
    *,
    address: str | None = None,
    workers: int = 2,
    in_flight_per_worker: int = 8,
    max_worker_restarts: int = 3,
    max_sample_retries: int = 2,
    fsync: FsyncPolicy | str = FsyncPolicy.EPISODE,
    progress: bool | IO[str] = True,
    retry_infra: bool = True,
    metadata: dict[str, Any] | None = None,
    actor_options: dict[str, Any] | None = None,
    init_options: dict[str, Any] | None = None,
    episode_fn: EpisodeFn = run_episode,
) -> RayRolloutReport:
    """Run ``n_per_task`` samples of every task on ``workers`` Ray actors into a sharded store.

    ``agent_factory`` and ``reward_fn`` are shipped to the workers (Ray pickles them), so they
    must be importable or picklable there; agents are made on the workers' nodes. ``address``
    is a running Ray cluster (``"auto"``, ``"ray://host:10001"``, ...); ``None`` starts a local
    instance for this rollout. ``actor_options`` go to ``ray.remote(...).options`` (e.g.
    ``{"num_cpus": 1}`` or a node resource to pin workers to sandbox hosts).
    """
    if n_per_task < 1 or workers < 1 or in_flight_per_worker < 1:
        raise ValueError("n_per_task, workers and in_flight_per_worker must be at least 1")
    if max_sample_retries < 0:
        raise ValueError("max_sample_retries must be at least 0")
    task_list: Sequence[RolloutTask] = [
        t.model_copy(update={"metadata": {**t.metadata, "group_size": n_per_task}}) for t in tasks
    ]
    ids = [t.id for t in task_list]
    if len(set(ids)) != len(ids):
        raise ValueError("task ids must be unique (they name the GRPO groups)")
    ray = _ray()
    t0 = time.perf_counter()
    sharded = ShardedStore(store)
    done = complete_pairs(sharded.path, retry_infra=retry_infra)
    queue = deque(
        (task, k) for task in task_list for k in range(n_per_task) if (task.id, k) not in done
    )
    report = RayRolloutReport(planned=len(task_list) * n_per_task)
    report.skipped = report.planned - len(queue)
    if not queue:
        report.shards = list(sharded.manifest.shards)
        return report
    started_ray = not ray.is_initialized()
    if started_ray:
        ray.init(address=address, **(init_options or {"log_to_driver": False}))
    manifest_meta = {"n_per_task": n_per_task, "executor": "ray", **(metadata or {})}
    cluster = _Cluster(
        ray,
        sharded,
        (agent_factory, reward_fn, str(FsyncPolicy(fsync)), manifest_meta, episode_fn),
        actor_options or {},
    )
    bar = Progress(
        len(queue),
        stream=progress if not isinstance(progress, bool) else None,
        enabled=progress is not False,
    )
    slots = [cluster.start(i) for i in range(workers)]
    report.workers = workers
    try:
        limits = _Limits(in_flight_per_worker, max_worker_restarts, max_sample_retries, retry_infra)
        await _drive(ray, cluster, slots, queue, limits, report, bar)
    finally:
        with anyio.CancelScope(shield=True):
            await cluster.close(slots, report)
            if started_ray:
                ray.shutdown()
    report.worker_restarts = cluster.restarts
    report.shards = list(sharded.manifest.shards)
    report.elapsed_s = time.perf_counter() - t0
    return report


@dataclass(frozen=True)
class _Limits:
    in_flight: int
    max_restarts: int
    max_sample_retries: int
    retry_infra: bool = True


def _recorded_outcome(
    shard: Path, task_id: str, sample_index: int, retry_infra: bool
) -> tuple[str, str | None] | None:
    """What a dead worker's shard says of one pair it was running: (episode id, error or None)
    when the episode ended there and would count as done on a resume (the worker died after
    writing the end but before its reply reached the driver), else None (run it again)."""
    if not shard.exists() or shard.stat().st_size == 0:
        return None
    for traj in read_store(shard).finished:
        start, end = traj.start, traj.end
        if (start.task_id, start.sample_index) != (task_id, sample_index) or end is None:
            continue
        if counts_as_done(traj, retry_infra=retry_infra):
            failed = end.status is EpisodeStatus.FAILED or (
                end.failure is FailureAttribution.INFRASTRUCTURE
            )
            return start.episode_id, (end.error or end.status.value) if failed else None
    return None


async def _drive(
    ray: Any,
    cluster: _Cluster,
    slots: list[_Slot],
    queue: deque[tuple[RolloutTask, int]],
    limits: _Limits,
    report: RolloutReport,
    bar: Progress,
) -> None:
    """Feed the queue to every worker's slots until it is empty and nothing is in flight.

    A sample whose episode failed (infrastructure, a reward function that raised) goes back to
    the queue up to ``max_sample_retries`` times, as in the single-process rollout: the failed
    attempt stays in the store, and ``report.retried`` lists it."""
    actor_died = ray.exceptions.RayActorError
    retries: dict[tuple[str, int], int] = {}
    busy = [0]  # episodes in flight, all workers: a slot with an empty queue waits for them
    wake = anyio.Event()

    async def slot_loop(slot: _Slot) -> None:
        nonlocal wake
        while True:
            if not queue:
                if busy[0] == 0 or not slot.alive:
                    return
                await wake.wait()  # a failed episode may come back to the queue
                continue
            task, k = queue.popleft()
            generation, shard = slot.generation, slot.shard
            busy[0] += 1
            try:
                episode_id, error = await slot.actor.run.remote(task, k)
            except actor_died as exc:
                # The worker may have died after its shard got the episode's end but before its
                # reply came back: that episode is done and is not run a second time (a second
                # finished sample would make its GRPO group one too big).
                recorded = _recorded_outcome(shard, task.id, k, limits.retry_infra)
                if recorded is None:
                    queue.appendleft((task, k))  # rerun elsewhere: nothing recorded is lost
                if slot.generation == generation:
                    if slot.restarts >= limits.max_restarts:
                        slot.alive = False
                    else:
                        cluster.replace(slot)
                if recorded is None:
                    if not slot.alive:
                        _fail_rest_if_no_worker(slots, queue, report, bar, short_error(exc))
                        return
                    continue
                episode_id, error = recorded
            finally:
                busy[0] -= 1
                wake.set()
                wake = anyio.Event()
            if error is not None and retries.get((task.id, k), 0) < limits.max_sample_retries:
                retries[(task.id, k)] = retries.get((task.id, k), 0) + 1
                report.retried.append(EpisodeFailure(task_id=task.id, sample_index=k, error=error))
                if episode_id:
                    report.episode_ids.append(episode_id)
                queue.append((task, k))
                continue
            _count(report, bar, task, k, episode_id, error)

    async with anyio.create_task_group() as tg:
        for slot in slots:
            for _ in range(limits.in_flight):
                tg.start_soon(slot_loop, slot)


def _count(
    report: RolloutReport,
    bar: Progress,
    task: RolloutTask,
    k: int,
    episode_id: str,
    error: str | None,
) -> None:
    report.ran += 1
    if episode_id:
        report.episode_ids.append(episode_id)
    if error is None:
        report.completed += 1
    else:
        report.failures.append(EpisodeFailure(task_id=task.id, sample_index=k, error=error))
    bar.advance(failed=error is not None)


def _fail_rest_if_no_worker(
    slots: list[_Slot],
    queue: deque[tuple[RolloutTask, int]],
    report: RolloutReport,
    bar: Progress,
    why: str,
) -> None:
    if any(s.alive for s in slots):
        return
    while queue:
        task, k = queue.popleft()
        _count(report, bar, task, k, "", f"no rollout worker left: {why}")


class RayOptions(BaseModel):
    """How ``agentkit rollout --ray`` runs (the CLI's view of :func:`ray_rollout`)."""

    address: str | None = None
    workers: int = 2
    in_flight_per_worker: int = 8
