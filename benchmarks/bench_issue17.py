"""Issue #17 in one run: every goal's benchmark, before and after, and the goals table.

Runs, one after the other on this machine (each benchmark alternates its before and after
contenders inside its own run, so their ratios share the machine's load):

- ``bench_runtime.py`` (goals 1, 4, 6): N=100 and 1000, 0 ms, agentkit with a sync tool, an async
  tool and ``inline=True`` against the raw aiohttp loop, plus the peers at N=100;
- ``bench_token_mode.py`` (goal 2): token mode against chat mode, fake server, median of tries;
- ``bench_glm45_dialect.py`` (goal 3): under ``--sglang-python`` (an interpreter with SGLang's
  parsers importable; without them goal 3 is reported as not measured);
- ``bench_embedded.py --compare`` (goal 5): the whole ``agentkit run`` process and its answer.

"Before" is a commit (default: 1a34b1d, the code when the issue was filed), checked out into a
temporary git worktree that is removed at the end. Each benchmark's own JSON is kept under
``benchmarks/results/issue17-<date>/``; the goals, the load averages and the commands go to
``benchmarks/results/issue17-<date>.json`` and the table is printed as Markdown. A goal is "met"
only as computed from its figures; a benchmark that failed is reported as not run.

    nice python benchmarks/bench_issue17.py --sglang-python /tmp/sgl_venv/bin/python
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if not __package__:  # run as a script: python benchmarks/bench_issue17.py
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.bench_embedded import README_QUESTION  # noqa: E402
from benchmarks.issue17.goals import (  # noqa: E402
    Goal,
    embedded_goal,
    parser_goal,
    runtime_goals,
    token_goal,
)

ISSUE_START = "1a34b1d"


def _run(command: list[str], log: list[dict[str, Any]]) -> bool:
    """Run one benchmark from the repository root; its command, exit code, time and the load
    average before and after go to ``log``. True when it exited 0."""
    entry: dict[str, Any] = {"command": shlex.join(command), "load_before": os.getloadavg()}
    print(f"$ {entry['command']}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO_ROOT, check=False)
    entry |= {
        "returncode": done.returncode,
        "seconds": round(time.perf_counter() - started, 1),
        "load_after": os.getloadavg(),
    }
    log.append(entry)
    return done.returncode == 0


def _read(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def table(goals: list[Goal]) -> str:
    lines = ["| goal | figures (one run, before -> after) | met? |", "|---|---|---|"]
    for goal in sorted(goals, key=lambda g: g.number):
        met = {True: "yes", False: "**no**", None: "not measured"}[goal.met]
        lines.append(f"| {goal.number}. {goal.title} | {goal.figures} | {met} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--before", default=ISSUE_START, help="commit to compare against")
    parser.add_argument("--sglang-python", default=sys.executable, help="interpreter for goal 3")
    parser.add_argument("--token-tries", type=int, default=5)
    parser.add_argument("--embedded-rounds", type=int, default=3)
    parser.add_argument("--skip", default="", help="comma list of: runtime,token,parser,embedded")
    args = parser.parse_args()
    skip = {part for part in args.skip.split(",") if part}
    stamp = dt.datetime.now(dt.UTC)
    out_dir = REPO_ROOT / "benchmarks" / "results" / f"issue17-{stamp:%Y-%m-%d}"
    out_dir.mkdir(parents=True, exist_ok=True)
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = bool(
        subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    log: list[dict[str, Any]] = []
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="issue17-before-") as scratch:
        before = Path(scratch) / "tree"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(before), args.before],
            cwd=REPO_ROOT,
            check=True,
            capture_output=True,
        )
        try:
            started = time.time()
            results: dict[str, dict[str, Any] | None] = {}
            if "runtime" not in skip:
                path = out_dir / "runtime.json"
                command = [python, "benchmarks/bench_runtime.py", "--n", "100,1000"]
                command += ["--latency-ms", "0", "--peers-max-n", "100", "--before", str(before)]
                command += [
                    "--contenders",
                    "raw_aiohttp,agentkit,agentkit_async,agentkit_inline,agentkit_aiohttp",
                ]
                command[-1] += ",raw_httpx,openai_agents,pydantic_ai"
                command += ["--out", str(path)]
                results["runtime"] = _read(path) if _run(command, log) else None
            if "token" not in skip:
                path = out_dir / "token-mode.json"
                command = [python, "benchmarks/bench_token_mode.py", "--before", str(before)]
                command += ["--tries", str(args.token_tries), "--bound", "--out", str(path)]
                results["token"] = _read(path) if _run(command, log) else None
            if "parser" not in skip:
                path = out_dir / "glm45-dialect.json"
                command = [
                    args.sglang_python,
                    "benchmarks/bench_glm45_dialect.py",
                    "--repeats",
                    "5",
                ]
                command += ["--baseline", args.before, "--out", str(path)]
                results["parser"] = _read(path) if _run(command, log) else None
            if "embedded" not in skip:
                path = out_dir / "embedded.json"
                command = [python, "benchmarks/bench_embedded.py", "--compare", str(before)]
                command += ["--rounds", str(args.embedded_rounds), "--repeat", "1"]
                command += ["--out", str(path)]
                results["embedded"] = _read(path) if _run(command, log) else None
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(before)],
                cwd=REPO_ROOT,
                check=False,
                capture_output=True,
            )
    goals = runtime_goals(results.get("runtime")) if "runtime" not in skip else []
    if "token" not in skip:
        goals.append(token_goal(results.get("token")))
    if "parser" not in skip:
        goals.append(parser_goal(results.get("parser")))
    if "embedded" not in skip:
        goals.append(embedded_goal(results.get("embedded"), README_QUESTION))
    summary = {
        "date": stamp.isoformat(timespec="seconds"),
        "after": head + (" (with uncommitted changes)" if dirty else ""),
        "before": args.before,
        "command": shlex.join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "seconds": round(time.time() - started, 1),
        "runs": log,
        "goals": [goal.model_dump() for goal in goals],
    }
    path = REPO_ROOT / "benchmarks" / "results" / f"issue17-{stamp:%Y-%m-%d}.json"
    path.write_text(json.dumps(summary, indent=1) + "\n")
    print(f"after {summary['after']}, before {args.before}; wrote {path}")
    print(table(goals))
    if any(entry["returncode"] != 0 for entry in log):
        print("some benchmarks failed: see the runs in the JSON", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
