"""pass^k: the chance that k independent trials of a task all succeed, averaged over tasks.

With n trials of a task and c successes, the unbiased estimate is C(c, k) / C(n, k) (tau-bench,
arXiv 2406.12045). pass^1 is the plain success rate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from math import comb
from typing import Any


def pass_hat_k_task(successes: int, trials: int, k: int) -> float:
    """C(c, k) / C(n, k) for one task."""
    if not 1 <= k <= trials:
        raise ValueError(f"k must be between 1 and the number of trials ({trials}), got {k}")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be between 0 and {trials}, got {successes}")
    return comb(successes, k) / comb(trials, k)


def pass_hat_k(outcomes: Mapping[Any, Sequence[bool]], k: int) -> float:
    """Mean over tasks of C(c, k)/C(n, k); each task's n is its own number of trials."""
    if not outcomes:
        raise ValueError("no tasks")
    scores = [
        pass_hat_k_task(sum(map(bool, trials)), len(trials), k) for trials in outcomes.values()
    ]
    return sum(scores) / len(scores)


def pass_hat_ks(outcomes: Mapping[Any, Sequence[bool]]) -> dict[int, float]:
    """pass^1 .. pass^n where n is the smallest number of trials of any task."""
    if not outcomes:
        return {}
    n = min(len(trials) for trials in outcomes.values())
    return {k: pass_hat_k(outcomes, k) for k in range(1, n + 1)}
