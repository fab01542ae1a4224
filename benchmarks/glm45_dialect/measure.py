"""CPU time of each contender on a group of completions, whole or streamed; the contenders take
turns in every repeat, so a burst of load on the shared machine hits all of them alike."""

from __future__ import annotations

import os
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass, field

from .contenders import StreamRunner, WholeParser
from .corpus import Sample


def best_cpu_s(fn: Callable[[], object], repeats: int) -> float:
    return min(timeit.repeat(fn, number=1, repeat=repeats, timer=time.process_time))


def load_average() -> tuple[float, float]:
    one, five, _ = os.getloadavg()
    return one, five


def interleaved(jobs: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best CPU seconds of each job over ``repeats`` rounds, the jobs taking turns."""
    best = dict.fromkeys(jobs, float("inf"))
    for _ in range(repeats):
        for name, job in jobs.items():
            best[name] = min(best[name], best_cpu_s(job, 1))
    return best


@dataclass
class Group:
    """One measured group: what it was and each contender's best CPU seconds."""

    label: str  # e.g. "whole text, small"
    completions: int
    size_bytes: int
    chunks: int | None  # streamed groups only
    seconds: dict[str, float] = field(default_factory=dict)


def whole_text(
    label: str, contenders: dict[str, WholeParser], samples: list[Sample], repeats: int
) -> Group:
    def job(run: WholeParser) -> Callable[[], object]:
        return lambda: [run(sample) for sample in samples]

    jobs = {name: job(run) for name, run in contenders.items()}
    size = sum(len(s.text.encode()) for s in samples)
    return Group(label, len(samples), size, None, interleaved(jobs, repeats))


def streaming(
    label: str, contenders: dict[str, StreamRunner], samples: list[Sample], repeats: int
) -> Group:
    pairs = [(sample, sample.chunks()) for sample in samples]

    def job(run: StreamRunner) -> Callable[[], object]:
        return lambda: [run(sample, pieces) for sample, pieces in pairs]

    jobs = {name: job(run) for name, run in contenders.items()}
    size = sum(len(s.text.encode()) for s in samples)
    chunks = sum(len(pieces) for _, pieces in pairs)
    return Group(label, len(samples), size, chunks, interleaved(jobs, repeats))
