"""Rollouts: run groups of samples per task (GRPO groups) into a trajectory store.

:func:`rollout` runs ``n_per_task`` episodes of every task with at most ``concurrency`` at a
time, scores each with ``reward_fn`` and closes it in the store with its reward. One failing
episode never stops the batch: an exception becomes an infrastructure failure in the record.
Rerunning the same rollout on the same store skips the (task, sample) pairs already finished,
so a killed or interrupted rollout resumes where it stopped: episodes left unfinished, closed as
``cancelled`` (SIGINT, cancellation) or failed for infrastructure reasons are run again.
"""

from __future__ import annotations

import inspect
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream
from pydantic import BaseModel, ConfigDict, Field

from agentkit.agent import Agent
from agentkit.result import RunResult, failure_attribution
from agentkit.tool import describe_exception
from agentkit.trajectory.records import EpisodeStatus, FailureAttribution, RunManifest
from agentkit.trajectory.store import FsyncPolicy, JsonlStore, read_store


class RolloutTask(BaseModel):
    """One task: the user prompt, its ground truth and whatever the tools need (``deps``)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    id: str
    prompt: str
    label: Any = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    deps: Any = Field(default=None, exclude=True)


class Reward(BaseModel):
    """A reward with its components (a reward function may also return a plain float)."""

    value: float
    components: dict[str, Any] = Field(default_factory=dict)


AgentFactory = Callable[[RolloutTask], "Agent[Any, Any] | Awaitable[Agent[Any, Any]]"]
RewardFn = Callable[
    [RolloutTask, RunResult[Any]], "float | Reward | Awaitable[float | Reward | None] | None"
]


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
    episode_ids: list[str] = Field(default_factory=list)
    elapsed_s: float = 0.0


class Progress:
    """A one-line progress bar on a text stream (stderr by default), redrawn at most 10x/s."""

    def __init__(self, total: int, *, stream: IO[str] | None = None, enabled: bool = True) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self._last = 0.0
        self._t0 = time.monotonic()

    def advance(self, *, failed: bool = False) -> None:
        self.done += 1
        self.failed += int(failed)
        now = time.monotonic()
        if now - self._last >= 0.1 or self.done == self.total:
            self._last = now
            self.draw()

    def draw(self) -> None:
        if not self.enabled:
            return
        width = 30
        filled = width * self.done // self.total if self.total else width
        rate = self.done / max(time.monotonic() - self._t0, 1e-9)
        line = (
            f"\rrollout [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}"
            f" failed {self.failed}  {rate:.1f} ep/s"
        )
        self.stream.write(line + ("\n" if self.done == self.total else ""))
        self.stream.flush()


def complete_pairs(path: str | Path, *, retry_infra: bool = True) -> set[tuple[str, int]]:
    """The (task_id, sample_index) pairs a store already holds finished episodes for.

    A ``cancelled`` episode (interrupted: SIGINT, a cancelled rollout) never counts as done;
    nor, with ``retry_infra``, does an infrastructure failure."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return set()
    done: set[tuple[str, int]] = set()
    for traj in read_store(path).finished:
        start, end = traj.start, traj.end
        if start.task_id is None or start.sample_index is None or end is None:
            continue
        if end.status in (EpisodeStatus.CANCELLED, EpisodeStatus.RUNNING):
            continue
        if retry_infra and end.failure is FailureAttribution.INFRASTRUCTURE:
            continue
        done.add((start.task_id, start.sample_index))
    return done


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


def _short(exc: BaseException) -> str:
    return describe_exception(exc)[:500]


async def _run_episode(
    agent: Agent[Any, Any],
    task: RolloutTask,
    sample_index: int,
    store: JsonlStore,
    reward_fn: RewardFn | None,
) -> tuple[str, str | None]:
    """Run one episode; returns its id and an error text if it failed for any reason."""
    conv = agent.conversation(
        deps=task.deps,
        recorder=store,
        task_id=task.id,
        group_id=task.id,
        sample_index=sample_index,
        metadata=dict(task.metadata),
    )
    start = conv.trajectory.start
    start.label = task.label
    start.prompt_messages = (
        [{"role": "system", "content": start.instructions}] if start.instructions else []
    ) + [{"role": "user", "content": task.prompt}]
    result = await conv.send(task.prompt)  # never raises but cancellation
    if result.status is EpisodeStatus.FAILED:
        await conv.close_with(result)
        return conv.episode_id, result.error or "failed"
    reward: Reward | None = None
    try:
        if reward_fn is not None:
            raw = await _maybe_await(reward_fn(task, result))
            if raw is not None:
                reward = raw if isinstance(raw, Reward) else Reward(value=float(raw))
    except Exception as exc:
        # the verifier broke, not the policy: keep the episode out of training
        await conv.finish(
            status=result.status,
            output=result.output,
            failure=FailureAttribution.INFRASTRUCTURE,
            error=f"reward function failed: {_short(exc)}",
            termination_reason="reward_error",
        )
        return conv.episode_id, f"reward function failed: {_short(exc)}"
    end = await conv.finish(
        status=result.status,
        output=result.output,
        error=result.error,
        failure=failure_attribution(result.status),
        termination_reason=result.status.value,
        reward=reward.value if reward else None,
        reward_components=reward.components if reward else None,
    )
    failed = end.failure is FailureAttribution.INFRASTRUCTURE
    return conv.episode_id, (result.error or result.status.value) if failed else None


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
) -> RolloutReport:
    """Run ``n_per_task`` samples of every task (one GRPO group per task) into ``store``.

    ``agent_factory(task)`` gives the agent for an episode (it may return one shared agent).
    With ``close_agents`` every agent it gave is closed at the end, however the rollout ends
    (the ``agentkit rollout`` command does this); else closing them is the caller's job.
    ``reward_fn(task, result)`` returns a float, a :class:`Reward` or ``None``; it may be async.
    Pairs (task, sample) already finished in the store are skipped (infrastructure failures
    are run again unless ``retry_infra=False``; cancelled episodes always are).
    """
    if n_per_task < 1 or concurrency < 1:
        raise ValueError("n_per_task and concurrency must be at least 1")
    task_list: Sequence[RolloutTask] = list(tasks)
    ids = [t.id for t in task_list]
    if len(set(ids)) != len(ids):
        raise ValueError("task ids must be unique (they name the GRPO groups)")
    t0 = time.perf_counter()
    owned = not isinstance(store, JsonlStore)
    path = store.path if isinstance(store, JsonlStore) else Path(store)
    done = complete_pairs(path, retry_infra=retry_infra)
    jobs = [(task, k) for task in task_list for k in range(n_per_task) if (task.id, k) not in done]
    report = RolloutReport(planned=len(task_list) * n_per_task)
    report.skipped = report.planned - len(jobs)
    sink = store if isinstance(store, JsonlStore) else JsonlStore(path, fsync=fsync)
    bar = Progress(
        len(jobs),
        stream=progress if not isinstance(progress, bool) else None,
        enabled=progress is not False,
    )
    run = _Workers(agent_factory, reward_fn, sink, report, bar)
    try:
        if jobs and _only_blank(path):
            agent = await run.agent(jobs[0][0])
            sink.write(
                RunManifest(
                    model=agent.model.name,
                    mode="tokens" if agent.model.mode == "tokens" else "chat",
                    metadata={"n_per_task": n_per_task, **(metadata or {})},
                )
            )
        send, receive = anyio.create_memory_object_stream[tuple[RolloutTask, int]](len(jobs) or 1)
        for job in jobs:
            send.send_nowait(job)
        send.close()
        async with receive, anyio.create_task_group() as tg:
            for _ in range(min(concurrency, max(len(jobs), 1))):
                tg.start_soon(run.work, receive)
    finally:
        if close_agents:
            with anyio.CancelScope(shield=True):
                await _close_all(run.agents.values())
        if owned:
            sink.close()
    report.elapsed_s = time.perf_counter() - t0
    return report


class _Workers:
    """What the rollout's workers share: the factory, the store, the report and the agents."""

    def __init__(
        self,
        factory: AgentFactory,
        reward_fn: RewardFn | None,
        sink: JsonlStore,
        report: RolloutReport,
        bar: Progress,
    ) -> None:
        self.factory = factory
        self.reward_fn = reward_fn
        self.sink = sink
        self.report = report
        self.bar = bar
        self.agents: dict[int, Agent[Any, Any]] = {}  # every agent the factory gave

    async def agent(self, task: RolloutTask) -> Agent[Any, Any]:
        agent: Agent[Any, Any] = await _maybe_await(self.factory(task))
        self.agents.setdefault(id(agent), agent)
        return agent

    async def work(self, receive: MemoryObjectReceiveStream[tuple[RolloutTask, int]]) -> None:
        async for task, k in receive:
            episode_id: str
            error: str | None
            try:
                agent = await self.agent(task)
            except Exception as exc:
                episode_id, error = "", f"agent factory failed: {_short(exc)}"
            else:
                try:
                    episode_id, error = await _run_episode(
                        agent, task, k, self.sink, self.reward_fn
                    )
                except Exception as exc:  # e.g. the store itself failed (disk full)
                    episode_id, error = "", f"episode failed: {_short(exc)}"
            self._count(task, k, episode_id, error)

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


async def _close_all(agents: Iterable[Agent[Any, Any]]) -> None:
    for agent in agents:
        try:
            await agent.aclose()
        except Exception as exc:  # closing one must not keep the others open
            print(f"agentkit rollout: closing an agent failed: {_short(exc)}", file=sys.stderr)


def _only_blank(path: Path) -> bool:
    return path.stat().st_size == 0
