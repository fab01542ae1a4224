"""Rollouts at scale: 1,000 and 10,000 episodes, one process against a local Ray cluster.

Every contender runs the same seeded tasks (4 samples per task, token mode, two model calls
and one sync tool call per episode) against the same agentkit SGLang test servers (separate
processes on this machine). Measured per contender: wall time, episodes per second, client CPU
(the rollout process; with Ray also every worker actor), the CPU of the whole machine less the
servers (so Ray's own daemons count), and the machine's load average beside the figures. Run
from the repository root:

    PYTHONPATH=. nice python benchmarks/bench_scale.py --episodes 1000 10000

Results go to ``benchmarks/results/scale-<date>.json`` and are printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from datetime import date
from pathlib import Path
from typing import Any

import anyio

from agentkit.rollout import rollout
from agentkit.trajectory.store import read_store
from benchmarks.scale import agents

ROOT = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")


def start_servers(count: int) -> tuple[list[subprocess.Popen[str]], list[str]]:
    procs: list[subprocess.Popen[str]] = []
    urls: list[str] = []
    for _ in range(count):
        proc = subprocess.Popen(
            [sys.executable, "-m", "agentkit.testing", "serve", "--port", "0",
             "--policy", "benchmarks.scale.agents:policy", "--accept-length", "0"],
            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("READY "):
            raise RuntimeError(f"test server did not start: {line!r}")
        procs.append(proc)
        urls.append(line.split()[1])
    return procs, urls


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / TICKS


def machine_cpu() -> float:
    parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in parts]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / TICKS


Runner = Callable[[list[Any], Path], Coroutine[Any, Any, dict[str, Any]]]


async def run_single(tasks: list[Any], store: Path, concurrency: int) -> dict[str, Any]:
    report = await rollout(
        agents.make_agent, tasks, 4, concurrency, reward_fn=agents.reward,
        store=store / "single.jsonl", fsync="never", progress=False, close_agents=True,
    )  # fmt: skip
    agents.forget()
    return {"completed": report.completed, "worker_cpu_s": 0.0, "path": store / "single.jsonl"}


async def run_ray(tasks: list[Any], store: Path, workers: int, in_flight: int) -> dict[str, Any]:
    from agentkit.rollout_ray import ray_rollout

    report = await ray_rollout(
        agents.make_agent, tasks, 4, agents.reward, store / "ray", workers=workers,
        in_flight_per_worker=in_flight, fsync="never", progress=False,
        actor_options={"num_cpus": 0},
    )  # fmt: skip
    return {
        "completed": report.completed,
        "worker_cpu_s": sum(report.worker_cpu_s),
        "path": store / "ray",
    }


def measure(
    name: str, episodes: int, go: Callable[[Path], dict[str, Any]], servers: list[int]
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        load0 = os.getloadavg()[0]
        server0 = sum(proc_cpu(p) for p in servers)
        machine0 = machine_cpu()
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        result = go(Path(tmp))
        wall = time.perf_counter() - t0
        driver = time.process_time() - cpu0
        machine = machine_cpu() - machine0
        server = sum(proc_cpu(p) for p in servers) - server0
        calls = sum(len(t.calls) for t in read_store(result["path"]).finished)
    client = driver + result["worker_cpu_s"]
    return {
        "contender": name, "episodes": episodes, "completed": result["completed"],
        "model_calls": calls, "wall_s": round(wall, 2),
        "episodes_per_s": round(result["completed"] / wall, 1),
        "client_cpu_ms_per_step": round(1000 * client / max(calls, 1), 3),
        "machine_less_servers_cpu_ms_per_episode": round(1000 * (machine - server) / episodes, 3),
        "server_cpu_s": round(server, 1), "load_before": round(load0, 2),
        "load_after": round(os.getloadavg()[0], 2),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    procs, urls = start_servers(args.servers)
    os.environ["SCALE_URLS"] = ",".join(urls)
    os.environ["PYTHONPATH"] = str(ROOT)  # Ray workers import benchmarks.scale.agents
    pids = [p.pid for p in procs]
    rows: list[dict[str, Any]] = []
    try:
        import ray

        t0 = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        ray_start_s = time.perf_counter() - t0
        for episodes in args.episodes:
            task_list = agents.tasks(episodes // 4)
            rows.append(measure("single process", episodes, lambda d, ts=task_list: anyio.run(
                run_single, ts, d, args.concurrency), pids))  # fmt: skip
            rows.append(measure(f"ray ({args.workers} workers)", episodes, lambda d, ts=task_list: anyio.run(
                run_ray, ts, d, args.workers, args.concurrency // args.workers), pids))  # fmt: skip
        ray.shutdown()
    finally:
        for proc in procs:
            proc.terminate()
    out = {
        "date": str(date.today()), "cpus": os.cpu_count(), "servers": args.servers,
        "concurrency": args.concurrency, "ray_start_s": round(ray_start_s, 1), "rows": rows,
    }  # fmt: skip
    target = ROOT / "benchmarks" / "results" / f"scale-{date.today()}.json"
    target.write_text(json.dumps(out, indent=1) + "\n")
    keys = list(rows[0])
    print(f"ray.init: {ray_start_s:.1f} s; results in {target}")
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")


if __name__ == "__main__":
    main()
