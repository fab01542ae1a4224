"""Token mode against chat mode (issue 17, goal 2): client CPU per agent step, same loop, same run.

N concurrent episodes of K tool calls each (a plain ``def`` tool, every record built and handed to
a recorder), once through ``SGLangChat`` (``/v1/chat/completions``, the server renders and
parses) and once through ``SGLangTokens`` (``/generate`` with ``input_ids``, the client renders,
tokenises and parses), against a server in another process answering both endpoints with the
same GLM-4.5 completions (``benchmarks/token_mode/policy.py``): by default a fake with every reply
precomputed (``token_mode/fake_server.py``), so that neither mode waits on a slower endpoint;
``--server testing`` uses agentkit's protocol-faithful SGLang test server instead (its
``/generate`` decodes and re-parses every prompt, so on a busy machine token mode waits longer
and pays more event-loop wake-ups per step). Each cell runs in its own worker process and counts
only that process's CPU (``time.process_time``).

``--before PATH`` also runs both modes with agentkit imported from another checkout (``git
worktree add PATH <commit>``): the before and after figures of a change, interleaved in one run.
The figures that matter are ratios between cells of the same try (the machine is shared and
noisy); the load average is written beside them.

    nice python benchmarks/bench_token_mode.py --before /tmp/before      # N=100, K=5, 5 tries

``--bound`` adds a third cell per try, the current code's token mode with its parsing, tool
result encoding and decoding memoised (``token_mode/bound.py``): not a figure of agentkit but
the most a faster tokenizer or parser could give (``bound_over_chat``; ``bound_misses`` counts
the memo misses left in its timed runs, which should be 0).

Prints a table and writes ``benchmarks/results/token-mode-<date>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if not __package__:  # run as a script: python benchmarks/bench_token_mode.py
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.token_mode.policy import TOOL_CALLS_ENV  # noqa: E402

WORKER = REPO_ROOT / "benchmarks" / "token_mode" / "worker.py"
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
MODES = ("chat", "tokens")
BOUND = "tokens-bound"  # token mode with its text work memoised: token_mode/bound.py


class Server:
    """The fake (``fake``) or the SGLang test server (``testing``) with the benchmark's policy,
    on a free port, in its own process."""

    def __init__(self, kind: str, tool_calls: int, latency_ms: float) -> None:
        env = {**os.environ, TOOL_CALLS_ENV: str(tool_calls), "PYTHONPATH": str(REPO_ROOT)}
        command = [sys.executable, "-m"]
        if kind == "testing":
            command += ["agentkit.testing", "serve", "--latency", str(latency_ms / 1000)]
            command += ["--policy", "benchmarks.token_mode.policy:policy", "--port", "0"]
        else:
            command += ["benchmarks.token_mode.fake_server", "--latency-ms", str(latency_ms)]
            command += ["--tool-calls", str(tool_calls)]
        self.process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.startswith("READY "):
            self.close()
            raise RuntimeError(f"the {kind} server did not start: {line!r}")
        self.url = line.removeprefix("READY ")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def run_cell(code: Path, mode: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    """One worker process importing agentkit from ``code``; its JSON line, or why it failed."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    command = [sys.executable, str(WORKER), "--mode", mode, "--url", url]
    command += ["-n", str(args.n), "--tool-calls", str(args.tool_calls)]
    command += ["--result-chars", str(args.result_chars)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        return {"mode": mode, "failed": done.stderr.strip()[-2000:]}
    cell: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return cell


def run_tries(codes: dict[str, Path], url: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every (code, mode) cell once per try, the order rotated from one try to the next."""
    cells = [(label, mode) for label in codes for mode in MODES]
    if args.bound:  # bound.py patches the current code's names: the after code only
        cells.append(("after", BOUND))
    results: list[dict[str, Any]] = []
    for number in range(args.tries):
        shift = number % len(cells)
        for label, mode in cells[shift:] + cells[:shift]:
            cell = run_cell(codes[label], mode, url, args)
            cell.update(code=label, try_number=number, load_average=list(os.getloadavg()))
            results.append(cell)
            figure = cell.get("cpu_ms_per_step", "FAILED")
            print(f"  try {number} {label:>6} {mode:>6}: {figure} ms/step", flush=True)
    return results


def summary(results: list[dict[str, Any]], codes: list[str]) -> dict[str, Any]:
    """Medians per cell, and the ratios that matter, taken within each try then medianed."""
    good = [c for c in results if "cpu_ms_per_step" in c and not c.get("errors")]

    def figure(code: str, mode: str, number: int) -> float | None:
        found = [c for c in good if (c["code"], c["mode"], c["try_number"]) == (code, mode, number)]
        return float(found[0]["cpu_ms_per_step"]) if found else None

    numbers = sorted({c["try_number"] for c in results})
    out: dict[str, Any] = {"cpu_ms_per_step": {}, "tokens_over_chat": {}}
    for code in codes:
        for mode in MODES:
            values = [v for t in numbers if (v := figure(code, mode, t)) is not None]
            if values:
                out["cpu_ms_per_step"][f"{code}/{mode}"] = round(statistics.median(values), 4)
        ratios = [
            tok / chat
            for t in numbers
            if (tok := figure(code, "tokens", t)) and (chat := figure(code, "chat", t))
        ]
        if ratios:
            out["tokens_over_chat"][code] = round(statistics.median(ratios), 3)
    bound = [
        tok / chat
        for t in numbers
        if (tok := figure("after", BOUND, t)) and (chat := figure("after", "chat", t))
    ]
    if bound:
        values = [v for t in numbers if (v := figure("after", BOUND, t)) is not None]
        out["cpu_ms_per_step"][f"after/{BOUND}"] = round(statistics.median(values), 4)
        out["bound_over_chat"] = round(statistics.median(bound), 3)
        # a memo that missed in a timed run did real work there: the bound is then not one
        misses = sum(sum(c.get("bound_misses", {}).values()) for c in good if c["mode"] == BOUND)
        out["bound_misses"] = misses
    if "before" in codes:
        gains = [
            old / new
            for t in numbers
            if (old := figure("before", "tokens", t)) and (new := figure("after", "tokens", t))
        ]
        if gains:
            out["token_mode_speedup_after_vs_before"] = round(statistics.median(gains), 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=100, help="concurrent episodes")
    parser.add_argument("--tool-calls", type=int, default=5, help="K tool calls per episode")
    parser.add_argument("--tries", type=int, default=5)
    parser.add_argument("--server", choices=("fake", "testing"), default="fake")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="per request, server side")
    parser.add_argument("--result-chars", type=int, default=0, help="pad every tool result")
    parser.add_argument("--before", type=Path, help="a checkout of the code before the change")
    parser.add_argument(
        "--bound",
        action="store_true",
        help="also token mode with parsing, encoding and decoding memoised (token_mode/bound.py)",
    )
    parser.add_argument("--out", type=Path, help="results file (default: results/token-mode-DATE)")
    args = parser.parse_args()
    codes = {"after": REPO_ROOT}
    if args.before is not None:
        codes = {"before": args.before.resolve(), **codes}
    load_before = list(os.getloadavg())
    server = Server(args.server, args.tool_calls, args.latency_ms)
    try:
        results = run_tries(codes, server.url, args)
    finally:
        server.close()
    report = {
        "benchmark": "token mode vs chat mode, client CPU per step",
        "command": " ".join(["python", *sys.argv]),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "n": args.n,
        "tool_calls_per_episode": args.tool_calls,
        "server": args.server,
        "latency_ms": args.latency_ms,
        "result_chars": args.result_chars,
        "tries": args.tries,
        "bound": args.bound,
        "codes": {label: str(path) for label, path in codes.items()},
        "load_average_start": load_before,
        "load_average_end": list(os.getloadavg()),
        "summary": summary(results, list(codes)),
        "cells": results,
    }
    out = args.out or RESULTS_DIR / f"token-mode-{dt.date.today().isoformat()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report["summary"], indent=1))
    print(f"load average {load_before} -> {report['load_average_end']}; wrote {out}")


if __name__ == "__main__":
    main()
