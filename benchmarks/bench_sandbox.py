"""Docker sandbox benchmark: cold start, warm pool acquire, exec round trip, pool throughput.

    nice python benchmarks/bench_sandbox.py [--execs 200] [--runs 1000] [--agents 16] [--pool 4]

Compares the exec round trip of agentkit's async Engine API client (aiohttp on the unix socket)
with the docker SDK (blocking, in worker threads), on the same warm container. Needs a Docker
engine and the sandbox image (``agentkit sandbox build-image``). Prints a table and JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.to_thread

from agentkit_sandboxes.config import LABEL, SandboxConfig
from agentkit_sandboxes.docker_sandbox import DockerSandbox
from agentkit_sandboxes.engine import Engine
from agentkit_sandboxes.pool import SandboxPool


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(pct(values, 0.50), 2),
        "p95_ms": round(pct(values, 0.95), 2),
        "mean_ms": round(statistics.fmean(values) * 1000, 2),
    }


async def timed(n: int, step: Callable[[], Awaitable[Any]]) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        await step()
        out.append(time.perf_counter() - started)
    return out


async def bench_cold(engine: Engine, config: SandboxConfig, n: int) -> dict[str, Any]:
    create: list[float] = []
    first_exec: list[float] = []
    remove: list[float] = []
    for _ in range(n):
        t0 = time.perf_counter()
        box = await DockerSandbox.create(engine, config)
        t1 = time.perf_counter()
        await box.exec("true")
        t2 = time.perf_counter()
        await box.destroy()
        t3 = time.perf_counter()
        create.append(t1 - t0)
        first_exec.append(t2 - t1)
        remove.append(t3 - t2)
    total = [a + b + c for a, b, c in zip(create, first_exec, remove, strict=True)]
    return {
        "create_start": summary(create),
        "first_exec": summary(first_exec),
        "remove": summary(remove),
        "total": summary(total),
    }


async def bench_exec(engine: Engine, config: SandboxConfig, n: int) -> dict[str, Any]:
    import docker  # the SDK, for comparison only

    client = docker.from_env()
    box = await DockerSandbox.create(engine, config)
    try:
        for _ in range(5):
            await box.exec("true")
        container = client.containers.get(box.container_id)

        async def raw_exec() -> None:
            eid = await engine.exec_create(box.container_id, ["true"], user=config.job_user)
            async with engine.exec_stream(eid) as frames:
                async for _ in frames:
                    pass
            await engine.exec_inspect(eid)

        def sdk_exec() -> None:
            container.exec_run(["true"], user=config.job_user, demux=True)

        async def sdk_in_thread() -> None:
            await anyio.to_thread.run_sync(sdk_exec)

        results = {
            "sandbox.exec via in-container runner (default)": summary(
                await timed(n, lambda: box.exec("true"))
            ),
            "sandbox.exec python3 -c pass via runner": summary(
                await timed(max(n // 4, 10), lambda: box.exec(["python3", "-c", "pass"]))
            ),
        }
        box.use_runner = False
        results |= {
            "sandbox.exec direct (the docker exec + a counter exec, aiohttp)": summary(
                await timed(n, lambda: box.exec("true"))
            ),
            "raw Engine API exec (aiohttp)": summary(await timed(n, raw_exec)),
            "docker SDK exec_run in a worker thread": summary(await timed(n, sdk_in_thread)),
        }
        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(raw_exec)
        results["10 concurrent raw Engine API execs (wall)"] = {
            "wall_ms": round((time.perf_counter() - started) * 1000, 1)
        }
        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(sdk_in_thread)
        results["10 concurrent SDK exec in threads (wall)"] = {
            "wall_ms": round((time.perf_counter() - started) * 1000, 1)
        }
        return results
    finally:
        await box.destroy()
        client.close()


async def bench_pool(
    engine: Engine, config: SandboxConfig, size: int, agents: int, runs: int
) -> dict[str, Any]:
    acquire_times: list[float] = []
    run_times: list[float] = []
    started = time.perf_counter()
    async with SandboxPool(config, size=size, engine=engine) as pool:
        ready_s = time.perf_counter() - started
        # acquire from a full warm pool (idle path)
        for _ in range(50):
            while pool.ready < size:  # noqa: ASYNC110
                await anyio.sleep(0.005)
            t0 = time.perf_counter()
            box = await pool.acquire()
            acquire_times.append(time.perf_counter() - t0)
            await box.close()
        # N concurrent agents sharing the pool: acquire, run a Python snippet, release
        remaining = runs
        failures = 0

        async def agent() -> None:
            nonlocal remaining, failures
            while remaining > 0:
                remaining -= 1
                t0 = time.perf_counter()
                async with pool.sandbox() as sb:
                    result = await sb.exec(["python3", "-c", "print(sum(range(1000)))"])
                    if result.stdout != "499500\n":
                        failures += 1
                run_times.append(time.perf_counter() - t0)

        t_runs = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for _ in range(agents):
                tg.start_soon(agent)
        wall = time.perf_counter() - t_runs
        replaced = pool.replaced
    leftover = await engine.containers_with_label(f"{LABEL}=1")
    return {
        "pool_ready_s": round(ready_s, 2),
        "acquire_warm": summary(acquire_times),
        "run_under_load (acquire+exec+release)": summary(run_times),
        "runs": runs,
        "agents": agents,
        "pool_size": size,
        "runs_per_s": round(runs / wall, 1),
        "failures": failures,
        "replaced": replaced,
        "containers_left_after_close": len(leftover),
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--execs", type=int, default=200)
    parser.add_argument("--cold", type=int, default=10)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--agents", type=int, default=16)
    parser.add_argument("--pool", type=int, default=4)
    args = parser.parse_args()
    config = SandboxConfig()
    async with Engine() as engine:
        report = {
            "exec": await bench_exec(engine, config, args.execs),
            "cold": await bench_cold(engine, config, args.cold),
            "pool": await bench_pool(engine, config, args.pool, args.agents, args.runs),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    anyio.run(main)
