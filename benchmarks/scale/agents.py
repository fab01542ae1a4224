"""The agent, policy, tasks and reward of the scale benchmark (importable on Ray workers).

Each episode is two model calls (a tool call, then the answer) and one tool step, in token
mode against agentkit's SGLang test servers (``SCALE_URLS``, comma-separated).
"""

from __future__ import annotations

import os
from typing import Any

from agentkit import Agent, tool
from agentkit.models.sglang_tokens import SGLangTokens
from agentkit.result import RunResult
from agentkit.rollout import RolloutTask
from agentkit.testing import PolicyRequest, build_test_tokenizer

_AGENT: list[Agent[Any, Any]] = []


@tool
def lookup(q: str) -> str:
    """Look a question up."""
    return f"the answer to {q} is 42"


def policy(request: PolicyRequest) -> str:
    last = request.last_message or {}
    if last.get("role") == "tool":
        return f"<think>read it</think>\nAnswer: {last.get('content', '')}"
    return (
        "<think>look it up</think>\n<tool_call>lookup\n<arg_key>q</arg_key>\n"
        f"<arg_value>{request.first_user_message or ''}</arg_value>\n</tool_call>"
    )


def make_agent(task: RolloutTask | None = None) -> Agent[Any, Any]:
    if not _AGENT:
        urls = os.environ["SCALE_URLS"].split(",")
        _AGENT.append(
            Agent(
                model=SGLangTokens(urls, build_test_tokenizer()),
                instructions="Answer with the help of lookup.",
                tools=[lookup],
                max_turns=4,
            )
        )
    return _AGENT[0]


def forget() -> None:
    """Drop the cached agent (after the rollout closed it)."""
    _AGENT.clear()


def reward(task: RolloutTask, result: RunResult[Any]) -> float:
    return float("42" in result.text)


def tasks(n: int) -> list[RolloutTask]:
    return [RolloutTask(id=f"t{i}", prompt=f"question {i}?", label="42") for i in range(n)]
