"""Speed of the GLM-4.5 dialect: render (vs the published template through jinja2), parse, and
the streaming parser fed token-sized chunks. Run: ``python benchmarks/bench_glm45_dialect.py``.

The jinja2 comparison needs ``../shared/glm45/chat_template.jinja`` (skipped if absent).
"""

from __future__ import annotations

import json
import os
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentkit.dialects.glm45 import StreamParser, format_assistant, parse, render

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": f"tool_{i}",
            "description": "Does something useful with the given arguments.",
            "parameters": {
                "type": "object",
                "properties": {
                    "query": {"type": "string"},
                    "limit": {"type": "integer"},
                    "filters": {"type": "object"},
                },
                "required": ["query"],
            },
        },
    }
    for i in range(8)
]


def conversation(turns: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are a careful agent."}]
    for turn in range(turns):
        messages.append({"role": "user", "content": f"Question {turn}: find the relevant docs."})
        messages.append(
            {
                "role": "assistant",
                "content": "Let me search.",
                "reasoning_content": "I should call the search tool with a small limit.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {
                            "name": "tool_1",
                            "arguments": json.dumps({"query": "agent docs", "limit": 5}),
                        },
                    }
                ],
            }
        )
        messages.append({"role": "tool", "tool_call_id": "call_1", "content": "result " * 40})
        messages.append({"role": "assistant", "content": "Here is what I found. " * 5})
    return messages


def per_call_us(fn: Callable[[], object], number: int) -> float:
    """CPU microseconds per call (process time: the machine is shared, wall time is noisy)."""
    return min(timeit.repeat(fn, number=number, repeat=5, timer=time.process_time)) / number * 1e6


def jinja_renderer() -> Callable[[list[dict[str, Any]]], str] | None:
    shared = Path(
        os.environ.get("AGENTKIT_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared")
    )
    path = shared / "glm45" / "chat_template.jinja"
    if not path.exists():
        return None
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = lambda v, ensure_ascii=False, **_: json.dumps(
        v, ensure_ascii=ensure_ascii
    )
    template = env.from_string(path.read_text())

    def run(messages: list[dict[str, Any]]) -> str:
        prepared = json.loads(json.dumps(messages))
        for m in prepared:
            for c in m.get("tool_calls") or ():
                c["function"]["arguments"] = json.loads(c["function"]["arguments"])
        return template.render(messages=prepared, tools=TOOLS, add_generation_prompt=True)

    return run


def main() -> None:
    messages = conversation(10)  # 41 messages
    ours = per_call_us(lambda: render(messages, TOOLS), 200)
    print(f"render, 41 messages + 8 tools: {ours:.0f} us/call")
    jinja = jinja_renderer()
    if jinja is not None:
        assert jinja(messages) == render(messages, TOOLS)
        theirs = per_call_us(lambda: jinja(messages), 50)
        print(f"  jinja2 template (same output): {theirs:.0f} us/call, ratio {theirs / ours:.1f}x")

    call_turn = (
        format_assistant(
            "I need to look this up. " * 10,
            "Let me search.",
            [("tool_1", {"query": "agent docs", "limit": 5, "filters": {"lang": "en"}})],
        )
        + "<|observation|>"
    )
    answer_turn = (
        format_assistant("Thinking it over. " * 40, "Final answer text. " * 200, []) + "<|user|>"
    )
    for label, text in (("tool-call turn", call_turn), ("long answer", answer_turn)):

        def parsed(text: str = text) -> None:
            parse(text, TOOLS)

        whole = per_call_us(parsed, 500)
        chunks = [text[i : i + 4] for i in range(0, len(text), 4)]

        def streamed(chunks: list[str] = chunks) -> None:
            parser = StreamParser(TOOLS)
            for chunk in chunks:
                parser.feed(chunk)
            parser.close()

        per_stream = per_call_us(streamed, 50)
        print(
            f"{label} ({len(text)} chars): parse {whole:.0f} us; "
            f"streamed in {len(chunks)} 4-char chunks {per_stream:.0f} us "
            f"({per_stream / len(chunks):.1f} us/chunk)"
        )


if __name__ == "__main__":
    main()
