"""Measure one contender in this process: N concurrent agent runs, client CPU, wall and GC time.

Run as a worker by ``bench_runtime.py`` (one process per contender, latency and N, so each
cell's CPU time, imports, garbage and peak memory are its own) and print one JSON line per cell.

Memory: ``rss_base_mib`` is the resident set after the client is set up and one warm-up run
is done (imports included); ``rss_peak_mib`` is the process's high-water mark (``ru_maxrss``)
after the timed runs, so ``rss_peak_mib - rss_base_mib`` is what the N concurrent runs added.
``--agentkit-path`` imports agentkit from another checkout (the "before" figures of a change,
measured in the same run); the cells are then named ``<contender>@<label>``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import sys
import time
from typing import Any

from pydantic import BaseModel

from benchmarks.runtime.contenders import CONTENDERS, Contender
from benchmarks.runtime.fake_server import raise_fd_limit


class Cell(BaseModel):
    """The figures of one (contender, latency, N) cell."""

    contender: str
    latency_ms: float
    n: int
    tool_calls_per_run: int
    runs_ok: int
    tool_calls: int
    steps: int
    cpu_s: float
    wall_s: float
    gc_s: float
    cpu_ms_per_step: float
    gc_share: float
    ideal_wall_s: float
    errors: list[str] = []
    rss_base_mib: float = 0.0
    rss_peak_mib: float = 0.0
    load_average: list[float] = []
    notes: dict[str, Any] = {}
    tries_cpu_ms_per_step: list[float] = []
    tries_wall_s: list[float] = []


class GCTimer:
    """Sum the CPU time spent in the cyclic garbage collector (via ``gc.callbacks``).

    Thread CPU time, not wall time: on a loaded machine the process may be descheduled in the
    middle of a collection, and that wait is not the collector's cost.
    """

    def __init__(self) -> None:
        self.total_s = 0.0
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.thread_time()
        else:
            self.total_s += time.thread_time() - self._start

    def __enter__(self) -> GCTimer:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


async def measure(contender: Contender, n: int, tool_calls: int, latency_ms: float) -> Cell:
    """Warm up with one run, then time ``n`` concurrent runs."""
    await contender.run_one()
    gc.collect()
    calls_before = contender.tool_calls
    with GCTimer() as gc_timer:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        outcomes = await asyncio.gather(
            *(contender.run_one() for _ in range(n)), return_exceptions=True
        )
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    errors = sorted(
        {f"{type(o).__name__}: {o}"[:300] for o in outcomes if isinstance(o, BaseException)}
    )
    steps = n * (tool_calls + 1)
    return Cell(
        contender=contender.name,
        latency_ms=latency_ms,
        n=n,
        tool_calls_per_run=tool_calls,
        runs_ok=sum(1 for o in outcomes if o is True),
        tool_calls=contender.tool_calls - calls_before,
        steps=steps,
        cpu_s=cpu,
        wall_s=wall,
        gc_s=gc_timer.total_s,
        cpu_ms_per_step=cpu * 1000 / steps,
        gc_share=gc_timer.total_s / cpu if cpu > 0 else 0.0,
        ideal_wall_s=(tool_calls + 1) * latency_ms / 1000,
        errors=errors,
    )


async def measure_all(
    name: str, base_url: str, ns: list[int], tool_calls: int, latency_ms: float
) -> list[Cell]:
    """All N values for one contender, sharing one client (as an application would)."""
    contender = CONTENDERS[name]()
    await contender.setup(base_url, max(ns), max_turns=tool_calls + 2)
    try:
        await contender.run_one()
        gc.collect()
        base = rss_mib()
        cells = []
        for n in ns:
            tries = [await measure(contender, n, tool_calls, latency_ms) for _ in range(repeats(n))]
            cells.append(median_cell(tries))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        update = {
            "rss_base_mib": round(base, 1),
            "rss_peak_mib": round(peak, 1),
            "notes": contender.notes(),
        }
        return [c.model_copy(update=update) for c in cells]
    finally:
        await contender.aclose()


def rss_mib() -> float:
    """The resident set size of this process now, in MiB (Linux ``/proc``)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def repeats(n: int) -> int:
    """Small cells are noisy on a shared machine: repeat them (5 at N=1, 3 at N=100, 1 at 1000)."""
    return max(1, min(5, 300 // n))


def median_cell(tries: list[Cell]) -> Cell:
    """The try with the median CPU time, carrying every try's CPU and wall time."""
    ordered = sorted(tries, key=lambda c: c.cpu_s)
    chosen = ordered[len(ordered) // 2]
    return chosen.model_copy(
        update={
            "tries_cpu_ms_per_step": [round(c.cpu_ms_per_step, 4) for c in tries],
            "tries_wall_s": [round(c.wall_s, 4) for c in tries],
            "runs_ok": min(c.runs_ok for c in tries),
            "errors": sorted({e for c in tries for e in c.errors}),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark worker: one contender, one server.")
    parser.add_argument("--contender", required=True, choices=sorted(CONTENDERS))
    parser.add_argument("--url", required=True)
    parser.add_argument("--n", required=True, help="comma-separated concurrency levels")
    parser.add_argument("--tool-calls", type=int, default=5)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--agentkit-path", default=None, help="import agentkit from this tree")
    parser.add_argument("--label", default=None, help="suffix of the contender's name")
    args = parser.parse_args()
    raise_fd_limit()
    if args.agentkit_path:
        sys.path.insert(0, args.agentkit_path)  # before agentkit's first import (in setup)
    load = [round(x, 2) for x in os.getloadavg()]
    ns = [int(x) for x in args.n.split(",")]
    cells = asyncio.run(measure_all(args.contender, args.url, ns, args.tool_calls, args.latency_ms))
    imported = str(getattr(sys.modules.get("agentkit"), "__file__", ""))
    if args.agentkit_path and not imported.startswith(args.agentkit_path):
        raise SystemExit(f"agentkit was not imported from {args.agentkit_path}")
    for cell in cells:
        name = f"{cell.contender}@{args.label}" if args.label else cell.contender
        cell = cell.model_copy(update={"contender": name, "load_average": load})
        print(json.dumps(cell.model_dump()), flush=True)


if __name__ == "__main__":
    main()
