"""TAU environments: database copy, canonical hash, gold replay, and episodes through the loop.

    nice python benchmarks/bench_tau.py [--data-dir ../shared/taubench] [--episodes 40]

Needs tau-bench's data for the retail/airline rows (``--data-dir``); the demo rows need nothing.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import anyio

from agentkit import Agent
from agentkit.envs import Domain, load_domain, run_tasks
from agentkit.envs.hashing import db_hash
from agentkit.envs.scripted import GoldPolicy, instruction_user
from agentkit.models import SGLangChat
from agentkit.testing import SGLangTestServer


def timed(fn: Any, repeat: int) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - started) / repeat


def data_rows(domain: Domain) -> None:
    state = domain.new_episode()
    domain.db_hash(state.data)  # build the per-record cache
    fresh = timed(domain.new_episode, 10)
    plain = timed(lambda: db_hash(state.data), 5)
    cached = timed(lambda: domain.db_hash(state.data), 10)
    started = time.perf_counter()
    for index, task in enumerate(domain.tasks):
        domain.gold_hash(task, index)
    gold = (time.perf_counter() - started) / len(domain.tasks)
    print(
        f"| {domain.name} | {fresh * 1e3:.0f} ms | {plain * 1e3:.0f} ms | {cached * 1e3:.0f} ms "
        f"| {gold * 1e3:.0f} ms |"
    )


async def episodes(domain: Domain, count: int, concurrency: int) -> None:
    indices = [i % len(domain.tasks) for i in range(count)]
    async with SGLangTestServer(policy=GoldPolicy(domain)) as server:
        agent: Agent[Any, str] = domain.agent(SGLangChat(server.base_url))
        async with agent:
            trials = max(1, count // len(domain.tasks))
            chosen = sorted(set(indices))[: count // trials]
            started = time.perf_counter()
            summary = await run_tasks(
                domain,
                agent,
                instruction_user,
                task_indices=chosen,
                trials=trials,
                concurrency=concurrency,
            )
            elapsed = time.perf_counter() - started
    n = len(summary.results)
    calls = sum(r.model_calls for r in summary.results)
    print(
        f"| {domain.name} | {n} | {concurrency} | {elapsed:.1f} s | {n / elapsed:.1f} | "
        f"{calls / elapsed:.0f} | {summary.pass_hat_k().get(1, 0):.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--data-dir", type=Path, default=Path(__file__).parents[2] / "shared" / "taubench"
    )
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    domains = [load_domain("demo")]
    for name in ("retail", "airline"):
        if (args.data_dir / name).is_dir():
            domains.append(load_domain(name, args.data_dir / name))
    print(
        "| domain | fresh database | hash (plain) | hash (cached) | gold replay + hash per task |"
    )
    print("|---|---|---|---|---|")
    for domain in domains:
        data_rows(domain)
    print()
    print("| domain | episodes | concurrency | wall | episodes/s | model calls/s | pass^1 |")
    print("|---|---|---|---|---|---|---|")
    for domain in domains:
        anyio.run(episodes, domain, args.episodes, args.concurrency)


if __name__ == "__main__":
    main()
