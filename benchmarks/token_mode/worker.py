"""One cell of the token-mode benchmark, in its own process: N concurrent agent episodes in one
mode against a running SGLang test server, printing one JSON line of figures.

Run by path (``python benchmarks/token_mode/worker.py ...``) so that the ``agentkit`` imported is
the one first on ``PYTHONPATH``: ``bench_token_mode.py`` points it at a worktree of the code
before the change to measure old and new in the same run. This file therefore imports nothing
from ``benchmarks``. The client's CPU is ``time.process_time()`` of this process only; the
server runs in another process.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import resource
import sys
import time
from typing import Any

INSTRUCTIONS = "You look things up with the lookup tool, then answer briefly."
PROMPT = "Look up the keys one by one, then say you are done."
FINAL_TEXT = "All lookups done."  # benchmarks/token_mode/policy.py answers with it


class CountingRecorder:
    """Receives every record (so every record is built) and keeps only their count."""

    def __init__(self) -> None:
        self.count = 0

    async def record(self, item: Any) -> None:
        self.count += 1


class GCTimer:
    """CPU time spent in the cyclic garbage collector (``gc.callbacks``), thread time so that
    being descheduled mid-collection on a busy machine does not count."""

    def __init__(self) -> None:
        self.total_s = 0.0
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.thread_time()
        else:
            self.total_s += time.thread_time() - self._start


class Episodes:
    """The agent under test: a plain ``def`` tool, records delivered to a recorder."""

    def __init__(self, mode: str, url: str, tool_calls: int, result_chars: int = 0) -> None:
        from agentkit import Agent, tool

        self.tool_calls = 0
        self.episodes = 0
        self.recorder = CountingRecorder()

        def lookup(key: str) -> str:
            """Look up the value stored under a key.

            Args:
                key: The key.
            """
            self.tool_calls += 1
            # a result no other call gets: token mode's stretch cache must not hit on it
            value = f"value of {key} (#{self.tool_calls})"
            return value + _filler(result_chars, self.tool_calls)

        self.agent: Any = Agent(
            model=_model(mode, url),
            instructions=INSTRUCTIONS,
            tools=[tool(lookup)],
            max_turns=tool_calls + 2,
            recorder=self.recorder,
        )

    async def run_one(self) -> bool:
        self.episodes += 1
        # each episode asks its own question, as a rollout's tasks do: only the system prompt
        # and tool block repeat from one episode to the next
        result = await self.agent.run(f"{PROMPT} (task {self.episodes})")
        return bool(result.status.value == "completed" and result.output == FINAL_TEXT)


def _filler(chars: int, seed: int) -> str:
    """``chars`` characters of varied words, different for every seed (a long tool result)."""
    words = ("alpha", "beta", "gamma", "delta", "record", "value", "status", "42", "7.5", "ok")
    out: list[str] = []
    size, index = 0, seed
    while size < chars:
        word = f"{words[index % len(words)]}{index % 97}"
        out.append(word)
        size += len(word) + 1
        index = index * 31 + 7
    return (" " + " ".join(out))[:chars] if chars else ""


def _model(mode: str, url: str) -> Any:
    if mode == "chat":
        from agentkit.models import SGLangChat

        return SGLangChat(url, model="glm-4.5-test")
    from agentkit.models import SGLangTokens
    from agentkit.testing import load_test_tokenizer

    return SGLangTokens(url, load_test_tokenizer(), model="glm-4.5-test")


async def measure(
    mode: str,
    url: str,
    n: int,
    tool_calls: int,
    profile: str | None = None,
    result_chars: int = 0,
) -> dict[str, Any]:
    """Warm up with one episode, then time ``n`` concurrent ones (under cProfile, written to
    ``profile``, when given: for finding hot spots, not for the figures)."""
    if mode == "tokens-bound":
        # the bound of bound.py: text work memoised, primed by a run that makes the same texts
        # (the same counters: a new Episodes repeats its questions and tool results)
        import bound  # type: ignore[import-not-found]  # beside this file, run by path

        bound.install()
        primer = Episodes(mode, url, tool_calls, result_chars)
        try:
            await primer.run_one()
            await asyncio.gather(*(primer.run_one() for _ in range(n)))
        finally:
            await primer.agent.aclose()
        bound.MISSES.clear()
    episodes = Episodes(mode, url, tool_calls, result_chars)
    profiler = cProfile.Profile(time.process_time) if profile else None
    try:
        await episodes.run_one()
        gc.collect()
        done_before = episodes.tool_calls
        if profiler is not None:
            profiler.enable()
        gc_timer = GCTimer()
        gc.callbacks.append(gc_timer)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        outcomes = await asyncio.gather(
            *(episodes.run_one() for _ in range(n)), return_exceptions=True
        )
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        gc.callbacks.remove(gc_timer)
        if profiler is not None and profile:
            profiler.disable()
            profiler.dump_stats(profile)
    finally:
        await episodes.agent.aclose()
    errors = sorted(
        {f"{type(o).__name__}: {o}"[:300] for o in outcomes if isinstance(o, BaseException)}
    )
    ok = sum(1 for o in outcomes if o is True)
    steps = n * (tool_calls + 1)  # model calls: K tool-call turns and the final answer
    return {
        "mode": mode,
        "n": n,
        "tool_calls_per_episode": tool_calls,
        "result_chars": result_chars,
        "episodes_ok": ok,
        "tool_calls": episodes.tool_calls - done_before,
        "steps": steps,
        "cpu_s": round(cpu, 4),
        "wall_s": round(wall, 4),
        "cpu_ms_per_step": round(1000 * cpu / steps, 4),
        "gc_ms_per_step": round(1000 * gc_timer.total_s / steps, 4),
        "errors": errors,
    } | ({"bound_misses": dict(bound.MISSES)} if mode == "tokens-bound" else {})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--mode",
        choices=("chat", "tokens", "tokens-bound"),
        required=True,
        help="tokens-bound: token mode with its text work memoised (bound.py), a bound only",
    )
    parser.add_argument("--url", required=True)
    parser.add_argument("-n", type=int, default=100)
    parser.add_argument("--tool-calls", type=int, default=5)
    parser.add_argument("--profile", help="write a cProfile of the timed episodes here")
    parser.add_argument("--result-chars", type=int, default=0, help="pad each tool result")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    cell = asyncio.run(
        measure(args.mode, args.url, args.n, args.tool_calls, args.profile, args.result_chars)
    )
    import agentkit

    cell["agentkit"] = str(agentkit.__file__)
    sys.stdout.write(json.dumps(cell) + "\n")


if __name__ == "__main__":
    main()
