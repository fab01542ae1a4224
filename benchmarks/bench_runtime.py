"""Runtime benchmark (issue 2, item 7): agentkit against raw HTTP loops and two agent frameworks.

N concurrent agent runs of K tool calls each against a fake OpenAI-compatible chat server in
another process, at a fixed model latency; client CPU time per agent step (one model call and its
tool call), wall time, GC share and peak memory, for agentkit (sync tool, async tool, sync tool
declared ``inline=True``, records written to a JSONL store), a raw aiohttp loop, a raw httpx loop, openai-agents and pydantic-ai,
all in the same run. Each (contender, latency, N) runs in its own worker process, so one cell's
memory and garbage do not pollute another's. ``--before PATH`` also runs the agentkit contenders
with agentkit imported from another checkout (``git worktree add PATH <commit>``), named
``agentkit@before``: the before and after figures of a change from one run.

    nice python benchmarks/bench_runtime.py          # N=1,100,1000 x 0,50 ms (~16 min on 2 busy cores)
    nice python benchmarks/bench_runtime.py --quick  # N=1,100 + the N=1000/50 ms target (~3 min)
    nice python benchmarks/bench_runtime.py --n 100,1000 --latency-ms 0 \
        --contenders raw_aiohttp,agentkit,agentkit_async --before /tmp/before

Prints a table and writes ``benchmarks/results/runtime-<date>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

if not __package__:  # run as a script: python benchmarks/bench_runtime.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.runtime.contenders import CONTENDERS
from benchmarks.runtime.fake_server import REPO_ROOT, FakeServer, child_env
from benchmarks.runtime.measure import Cell
from benchmarks.runtime.report import Report, load_average, machine, rows_from_cells, table

ORDER = [
    "raw_aiohttp",
    "agentkit",
    "agentkit_async",
    "agentkit_inline",
    "agentkit_aiohttp",
    "agentkit_jsonl",
    "raw_httpx",
    "openai_agents",
    "pydantic_ai",
]
AGENTKIT = ("agentkit", "agentkit_async", "agentkit_jsonl")  # also run --before (same API)
PEERS = ("raw_httpx", "openai_agents", "pydantic_ai")
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"


def run_worker(
    contender: str,
    base_url: str,
    ns: list[int],
    tool_calls: int,
    latency_ms: float,
    agentkit_path: Path | None = None,
) -> tuple[list[Cell], str | None]:
    """Measure one contender in a fresh process; returns its cells or why it failed."""
    extra = ["--agentkit-path", str(agentkit_path), "--label", "before"] if agentkit_path else []
    command = [
        sys.executable,
        "-m",
        "benchmarks.runtime.measure",
        "--contender",
        contender,
        "--url",
        base_url,
        "--n",
        ",".join(map(str, ns)),
        "--tool-calls",
        str(tool_calls),
        "--latency-ms",
        str(latency_ms),
        *extra,
    ]
    try:
        done = subprocess.run(
            command,
            cwd=REPO_ROOT,
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return [], f"{contender} at {latency_ms} ms: timed out"
    cells = [Cell.model_validate_json(line) for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-3:]
        return cells, f"{contender} at {latency_ms} ms: exit {done.returncode}: {' | '.join(tail)}"
    return cells, None


def run_benchmark(
    *,
    ns: list[int],
    latencies_ms: list[float],
    tool_calls: int = 5,
    contenders: list[str] | None = None,
    server_workers: int = 1,
    plan: Callable[[str, float], list[int]] | None = None,
    log: bool = True,
    before: Path | None = None,
) -> Report:
    """Run every contender at every latency (one fresh server per latency) and collect a report.

    ``plan(contender, latency)`` may narrow the N values of a contender at a latency; each N
    runs in its own worker. ``before``: a checkout whose agentkit runs the agentkit contenders
    too (right after the current code's, so both see the same load).
    """
    names = contenders or ORDER
    started = dt.datetime.now(dt.UTC)
    load_before = load_average()
    cells: list[Cell] = []
    failures: list[str] = []
    for latency in latencies_ms:
        with FakeServer(tool_calls, latency, workers=server_workers) as server:
            for name in names:
                trees = [None, before] if before and name in AGENTKIT else [None]
                for n in plan(name, latency) if plan else ns:
                    for tree in trees:
                        label = f"{name}@before" if tree else name
                        if log:
                            print(f"  {label} at {latency:g} ms, N={n} ...", file=sys.stderr)
                        got, failure = run_worker(
                            name, server.base_url, [n], tool_calls, latency, tree
                        )
                        cells.extend(got)
                        if failure:
                            failures.append(failure)
    info = machine()
    info["load_average_before"] = load_before
    info["load_average_after"] = load_average()
    return Report(
        date=started.isoformat(timespec="seconds"),
        machine=info,
        config={
            "n": ns,
            "latency_ms": latencies_ms,
            "tool_calls_per_run": tool_calls,
            "steps_per_run": tool_calls + 1,
            "server_workers": server_workers,
            "contenders": names,
            "before": str(before) if before else None,
        },
        rows=rows_from_cells(cells),
        failures=failures,
    )


def quick_plan(name: str, latency_ms: float) -> list[int]:
    """N=1 and 100 for everyone; N=1000 only for the target cell (agentkit and its baseline at
    50 ms). The frameworks at N=1000 cost minutes of CPU on a 2-core machine."""
    if latency_ms == 50 and name in ("raw_aiohttp", "agentkit"):
        return [1, 100, 1000]
    return [1, 100]


def _capped(plan: Callable[[str, float], list[int]], cap: int) -> Callable[[str, float], list[int]]:
    """``plan`` with httpx and the frameworks kept to N <= ``cap`` (they cost minutes above)."""

    def capped(name: str, latency_ms: float) -> list[int]:
        todo = plan(name, latency_ms)
        return [n for n in todo if n <= cap] if name in PEERS else todo

    return capped


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--quick", action="store_true", help="N=1,100, plus N=1000 at 50 ms for agentkit/aiohttp"
    )
    parser.add_argument("--n", type=_ints, default=None, help="concurrency levels, e.g. 1,100")
    parser.add_argument("--latency-ms", type=_floats, default=[0.0, 50.0])
    parser.add_argument("--tool-calls", type=int, default=5, help="K tool calls per run")
    parser.add_argument("--contenders", default=",".join(ORDER))
    parser.add_argument("--server-workers", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default: results/)")
    parser.add_argument(
        "--before", type=Path, default=None, help="also run agentkit from this checkout"
    )
    parser.add_argument(
        "--peers-max-n", type=int, default=None, help="run httpx and the frameworks up to this N"
    )
    args = parser.parse_args()
    names = [n for n in args.contenders.split(",") if n]
    unknown = sorted(set(names) - set(CONTENDERS))
    if unknown:
        parser.error(f"unknown contenders {unknown}; choose from {sorted(CONTENDERS)}")
    ns = args.n or [1, 100, 1000]
    plan = quick_plan if args.quick and not args.n else None
    if args.peers_max_n is not None:
        cap = args.peers_max_n
        plan = _capped(plan or (lambda name, latency: ns), cap)
    report = run_benchmark(
        ns=ns,
        latencies_ms=args.latency_ms,
        tool_calls=args.tool_calls,
        contenders=names,
        server_workers=args.server_workers,
        plan=plan,
        before=args.before.resolve() if args.before else None,
    )
    print(table(report.rows))
    for failure in report.failures:
        print(f"FAILED: {failure}")
    print(
        f"load average before {report.machine['load_average_before']}, after "
        f"{report.machine['load_average_after']} on {report.machine['cores']} cores"
    )
    out = args.out or RESULTS_DIR / f"runtime-{report.date[:10]}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report.model_dump(), indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
