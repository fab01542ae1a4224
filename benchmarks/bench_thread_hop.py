"""The thread hop alone: N concurrent tasks, each awaiting a trivial sync function K times.

Contenders, alternating round by round in one process (so all see the same load):
``anyio`` (``anyio.to_thread.run_sync``, what sync tools used before), ``pool``
(:func:`agentkit.worker_threads.run_sync`) and ``inline`` (the call made on the loop, the
floor); ``pool_fail_after`` / ``pool_timed``: the pool with a 60 s time limit, as
``anyio.fail_after`` around it (what ``Tool.call`` does for a tool's timeout) or
:func:`agentkit.worker_threads.run_sync_timed` (one loop timer). Reported per call: process CPU (``time.process_time``, all threads), wall time, and
the most threads alive at once.

Run: ``nice python benchmarks/bench_thread_hop.py --n 1,100,1000 --calls 5 --rounds 5``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio.to_thread

from agentkit import worker_threads


def trivial(x: int) -> int:
    return x + 1


async def _anyio(x: int) -> int:
    return await anyio.to_thread.run_sync(trivial, x, abandon_on_cancel=True)


async def _pool(x: int) -> int:
    result: int = await worker_threads.run_sync(trivial, x)
    return result


async def _pool_fail_after(x: int) -> int:
    with anyio.fail_after(60):  # what a tool with a timeout pays around the hop
        result: int = await worker_threads.run_sync(trivial, x)
    return result


async def _pool_timed(x: int) -> int:
    result: int = await worker_threads.run_sync_timed(trivial, (x,), 60)
    return result


async def _inline(x: int) -> int:
    await asyncio.sleep(0)  # a run yields between steps anyway
    return trivial(x)


CONTENDERS: dict[str, Callable[[int], Awaitable[int]]] = {
    "anyio": _anyio,
    "pool": _pool,
    "pool_fail_after": _pool_fail_after,
    "pool_timed": _pool_timed,
    "inline": _inline,
}


async def _cell(
    hop: Callable[[int], Awaitable[int]], n: int, calls: int
) -> tuple[float, float, int]:
    most_threads = [threading.active_count()]

    async def one_run(i: int) -> None:
        x = i
        for _ in range(calls):
            x = await hop(x)
            most_threads[0] = max(most_threads[0], threading.active_count())
        assert x == i + calls, (x, i)

    cpu, wall = time.process_time(), time.perf_counter()
    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(one_run, i)
    total = n * calls
    return (
        (time.process_time() - cpu) / total,
        (time.perf_counter() - wall) / total,
        most_threads[0],
    )


async def _main(ns: list[int], calls: int, rounds: int, names: list[str]) -> None:
    for name in names:  # warm-up: threads started, code paths taken once
        await _cell(CONTENDERS[name], 10, 2)
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    print(f"{'N':>5} {'contender':>15} {'CPU us/call':>12} {'wall us/call':>13} {'threads':>8}")
    for n in ns:
        seen: dict[str, list[tuple[float, float, int]]] = {name: [] for name in names}
        for _ in range(rounds):
            for name in names:
                seen[name].append(await _cell(CONTENDERS[name], n, calls))
        for name in names:
            cpu = statistics.median(s[0] for s in seen[name]) * 1e6
            wall = statistics.median(s[1] for s in seen[name]) * 1e6
            threads = max(s[2] for s in seen[name])
            print(f"{n:>5} {name:>15} {cpu:>12.1f} {wall:>13.1f} {threads:>8}")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", default="1,100,1000", help="concurrent tasks, comma-separated")
    parser.add_argument("--calls", type=int, default=5, help="calls per task")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per cell (median kept)")
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    args: Any = parser.parse_args(argv)
    names = args.contenders.split(",")
    unknown = set(names) - set(CONTENDERS)
    if unknown:
        parser.error(f"unknown contenders: {sorted(unknown)}")
    asyncio.run(_main([int(v) for v in args.n.split(",")], args.calls, args.rounds, names))


if __name__ == "__main__":
    main()
