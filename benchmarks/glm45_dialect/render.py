"""``render`` of a 41-message conversation with the corpus tools, against the published chat
template rendered by jinja2 (same output, asserted)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentkit.dialects.glm45 import render

from .contenders import ROOT
from .corpus import TOOLS
from .measure import best_cpu_s


def conversation(turns: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are a careful agent."}]
    for turn in range(turns):
        messages.append({"role": "user", "content": f"Question {turn}: find the relevant docs."})
        call = {"name": "search", "arguments": json.dumps({"query": "agent docs", "limit": 5})}
        messages.append(
            {
                "role": "assistant",
                "content": "Let me search.",
                "reasoning_content": "I should call the search tool with a small limit.",
                "tool_calls": [{"id": "call_1", "type": "function", "function": call}],
            }
        )
        messages.append({"role": "tool", "tool_call_id": "call_1", "content": "result " * 40})
        messages.append({"role": "assistant", "content": "Here is what I found. " * 5})
    return messages


def jinja_renderer() -> Callable[[list[dict[str, Any]]], str] | None:
    shared = Path(os.environ.get("AGENTKIT_SHARED_DIR", ROOT.parent / "shared"))
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


def bench_render(repeats: int) -> dict[str, float | None]:
    """Microseconds per render, agentkit's and the jinja2 template's (None when absent)."""
    messages = conversation(10)  # 41 messages
    ours = best_cpu_s(lambda: [render(messages, TOOLS) for _ in range(100)], repeats) * 1e4
    print(f"render, 41 messages + {len(TOOLS)} tools: {ours:.0f} us/call")
    jinja = jinja_renderer()
    if jinja is None:
        print("  jinja2 template skipped: ../shared/glm45/chat_template.jinja is absent")
        return {"agentkit": ours, "jinja2": None}
    assert jinja(messages) == render(messages, TOOLS)
    theirs = best_cpu_s(lambda: [jinja(messages) for _ in range(20)], repeats) * 5e4
    print(f"  jinja2 template (same output): {theirs:.0f} us/call, ratio {theirs / ours:.1f}x")
    return {"agentkit": ours, "jinja2": theirs}
