"""Tasks x trials, for tau-bench and tau2 runs alike: running the episodes concurrently
(:func:`run_trials`) and summarising their results (:class:`TrialStats`: per-task outcomes,
pass^k, average reward). Episodes that failed for infrastructure reasons are left out of both
pass^k and the average: they count neither as successes nor as failures."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

import anyio

from .passk import pass_hat_ks


class _Reward(Protocol):
    @property
    def reward(self) -> float: ...


class TrialResult(Protocol):
    """What a run summary needs of one episode's result."""

    @property
    def task_index(self) -> int: ...
    @property
    def trial(self) -> int: ...
    @property
    def reward(self) -> _Reward | None: ...
    @property
    def infrastructure_failure(self) -> bool: ...
    @property
    def success(self) -> bool: ...


R = TypeVar("R", bound=TrialResult)


class TrialStats(Generic[R]):
    """Summaries over ``self.results`` (a mixin for the run summary models, which hold them)."""

    results: list[R]

    def scored(self) -> list[R]:
        """The results that count: every one but the infrastructure failures."""
        return [r for r in self.results if not r.infrastructure_failure]

    def infrastructure_failures(self) -> list[R]:
        return [r for r in self.results if r.infrastructure_failure]

    def outcomes(self) -> dict[int, list[bool]]:
        """Per task, the success of each scored trial (in trial order)."""
        table: dict[int, list[bool]] = {}
        for result in sorted(self.scored(), key=lambda r: (r.task_index, r.trial)):
            table.setdefault(result.task_index, []).append(result.success)
        return table

    def pass_hat_k(self) -> dict[int, float]:
        return pass_hat_ks(self.outcomes())

    def average_reward(self) -> float | None:
        rewards = [r.reward.reward for r in self.scored() if r.reward is not None]
        return sum(rewards) / len(rewards) if rewards else None


async def run_trials(
    task_indices: list[int],
    trials: int,
    concurrency: int,
    play: Callable[[int, int], Awaitable[R]],
    progress: Callable[[int, int, R], None] | None = None,
) -> list[R]:
    """``play(task_index, trial)`` for every task and trial, at most ``concurrency`` at a time;
    ``progress(done, total, result)`` after each. The results come back in (task, trial) order."""
    if trials < 1 or concurrency < 1:
        raise ValueError("trials and concurrency must be at least 1")
    jobs = [(index, trial) for trial in range(trials) for index in task_indices]
    limiter = anyio.CapacityLimiter(concurrency)
    results: list[R] = []

    async def one(index: int, trial: int) -> None:
        async with limiter:
            result = await play(index, trial)
        results.append(result)
        if progress is not None:
            progress(len(results), len(jobs), result)

    async with anyio.create_task_group() as tg:
        for index, trial in jobs:
            tg.start_soon(one, index, trial)
    return sorted(results, key=lambda r: (r.task_index, r.trial))
