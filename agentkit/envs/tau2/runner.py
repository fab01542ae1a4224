"""Many tau2 episodes: tasks x trials, run concurrently, summarised as rewards per task, pass^k
(tau2's: C(c, k) / C(n, k) averaged over tasks, infrastructure failures left out) and, for each
failed episode, the reward components it missed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from agentkit.agent import Agent
from agentkit.trajectory.recorder import Recorder

from ..trials import TrialStats, run_trials
from .domain import Tau2Domain
from .episode import DEFAULT_MAX_ERRORS, DEFAULT_MAX_STEPS, Tau2EpisodeResult, run_tau2_episode
from .judge import NLJudge
from .tasks import Tau2Task
from .users import Tau2User

ProgressCallback = Callable[[int, int, Any], None]


class Tau2RunSummary(BaseModel, TrialStats[Tau2EpisodeResult]):
    benchmark: str = "tau2"
    domain: str
    task_indices: list[int]
    trials: int
    results: list[Tau2EpisodeResult] = Field(default_factory=list)


async def run_tau2_tasks(
    domain: Tau2Domain,
    agent: Agent[Any, Any],
    make_user: Callable[[Tau2Task], Tau2User],
    *,
    task_indices: list[int],
    trials: int = 1,
    concurrency: int = 8,
    max_steps: int = DEFAULT_MAX_STEPS,
    max_errors: int = DEFAULT_MAX_ERRORS,
    recorder: Recorder | None = None,
    judge: NLJudge | None = None,
    progress: ProgressCallback | None = None,
) -> Tau2RunSummary:
    """Run every (task, trial) episode, at most ``concurrency`` at a time."""

    async def play(index: int, trial: int) -> Tau2EpisodeResult:
        return await run_tau2_episode(
            agent,
            domain,
            index,
            make_user(domain.tasks[index]),
            trial=trial,
            max_steps=max_steps,
            max_errors=max_errors,
            recorder=recorder,
            judge=judge,
        )

    results = await run_trials(task_indices, trials, concurrency, play, progress)
    return Tau2RunSummary(
        domain=domain.name, task_indices=task_indices, trials=trials, results=results
    )


def render_tau2_table(summary: Tau2RunSummary) -> str:
    by_key = {(r.task_index, r.trial): r for r in summary.results}
    head = "task  " + " ".join(f"t{t:<4}" for t in range(summary.trials)) + " mean  id"
    lines = [f"benchmark: tau2, domain: {summary.domain}", head, "-" * len(head)]
    misses: list[str] = []
    for index in summary.task_indices:
        cells, rewards, task_id = [], [], ""
        for trial in range(summary.trials):
            result = by_key.get((index, trial))
            if result is None or result.reward is None:
                cells.append("infra")
                continue
            task_id = result.task_id
            cells.append(f"{result.reward.reward:<5.1f}")
            rewards.append(result.reward.reward)
            if not result.success:
                missed = ", ".join(result.reward.missed) or "none"
                misses.append(f"  task {index} trial {trial}: missed {missed}")
        mean = f"{sum(rewards) / len(rewards):.2f}" if rewards else "-"
        lines.append(f"{index:<5} " + " ".join(f"{c:<5}" for c in cells) + f" {mean:<5} {task_id}")
    lines.append("")
    average = summary.average_reward()
    scored = len(summary.scored())
    lines.append(
        f"episodes: {len(summary.results)}, scored: {scored}"
        + (f", average reward: {average:.4f}" if average is not None else "")
    )
    for k, value in summary.pass_hat_k().items():
        lines.append(f"pass^{k}: {value:.4f}")
    if misses:
        lines.append("failed episodes (components missed):")
        lines.extend(misses)
    failures = summary.infrastructure_failures()
    lines.append(f"infrastructure failures (not counted): {len(failures)}")
    lines.extend(f"  task {r.task_index} trial {r.trial}: {r.error}" for r in failures)
    return "\n".join(lines)
