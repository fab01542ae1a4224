"""Many episodes: tasks x trials, run concurrently, summarised as rewards per task and pass^k.

Episodes that fail for infrastructure reasons (model server down, simulator failure) are kept
apart: they count neither as successes nor as failures in pass^k.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TextIO

from pydantic import BaseModel, Field

from agentkit.agent import Agent
from agentkit.trajectory.recorder import Recorder

from .domain import Domain
from .episode import DEFAULT_MAX_STEPS, EpisodeResult, run_episode
from .tasks import Task
from .trials import TrialStats, run_trials
from .user import UserSimulator

ProgressCallback = Callable[[int, int, EpisodeResult], None]


class RunSummary(BaseModel, TrialStats[EpisodeResult]):
    domain: str
    task_indices: list[int]
    trials: int
    results: list[EpisodeResult] = Field(default_factory=list)


async def run_tasks(
    domain: Domain,
    agent: Agent[Any, Any],
    make_user: Callable[[Task], UserSimulator],
    *,
    task_indices: list[int],
    trials: int = 1,
    concurrency: int = 8,
    max_steps: int = DEFAULT_MAX_STEPS,
    recorder: Recorder | None = None,
    progress: ProgressCallback | None = None,
) -> RunSummary:
    """Run every (task, trial) episode, at most ``concurrency`` at a time."""

    async def play(index: int, trial: int) -> EpisodeResult:
        user = make_user(domain.tasks[index])
        return await run_episode(
            agent, domain, index, user, trial=trial, max_steps=max_steps, recorder=recorder
        )

    results = await run_trials(task_indices, trials, concurrency, play, progress)
    return RunSummary(domain=domain.name, task_indices=task_indices, trials=trials, results=results)


class ProgressBar:
    """A one-line progress bar on a stream (stderr by default)."""

    def __init__(self, stream: TextIO | None = None, width: int = 30) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.successes = 0
        self.infrastructure = 0

    def __call__(self, done: int, total: int, result: EpisodeResult) -> None:
        self.successes += result.success
        self.infrastructure += result.infrastructure_failure
        filled = self.width * done // max(total, 1)
        bar = "#" * filled + "." * (self.width - filled)
        end = "\n" if done == total else ""
        self.stream.write(
            f"\r[{bar}] {done}/{total} episodes, {self.successes} reward 1, "
            f"{self.infrastructure} infrastructure failures{end}"
        )
        self.stream.flush()


def render_table(summary: RunSummary) -> str:
    """Reward per task and trial, pass^1..k, and infrastructure failures listed apart."""
    by_key = {(r.task_index, r.trial): r for r in summary.results}
    head = "task  " + " ".join(f"t{t:<4}" for t in range(summary.trials)) + " mean"
    lines = [f"domain: {summary.domain}", head, "-" * len(head)]
    for index in summary.task_indices:
        cells = []
        rewards = []
        for trial in range(summary.trials):
            result = by_key.get((index, trial))
            if result is None or result.reward is None:
                cells.append("infra")
            else:
                cells.append(f"{result.reward.reward:<5.1f}")
                rewards.append(result.reward.reward)
        mean = f"{sum(rewards) / len(rewards):.2f}" if rewards else "-"
        lines.append(f"{index:<5} " + " ".join(f"{c:<5}" for c in cells) + f" {mean}")
    lines.append("")
    average = summary.average_reward()
    lines.append(
        f"episodes: {len(summary.results)}, scored: {len(summary.scored())}, "
        f"average reward: {average:.4f}"
        if average is not None
        else f"episodes: {len(summary.results)}, scored: 0"
    )
    for k, value in summary.pass_hat_k().items():
        lines.append(f"pass^{k}: {value:.4f}")
    failures = summary.infrastructure_failures()
    lines.append(f"infrastructure failures (not counted): {len(failures)}")
    for failure in failures:
        lines.append(f"  task {failure.task_index} trial {failure.trial}: {failure.error}")
    return "\n".join(lines)
