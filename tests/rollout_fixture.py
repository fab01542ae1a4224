"""An agent, tasks, a test-server policy and a reward for the rollout tests (also loaded by the
``agentkit rollout`` subprocess in the SIGKILL test: the server URL comes from the environment).
"""

from __future__ import annotations

import os
import time
from typing import Any

from agentkit import Agent, tool
from agentkit.models.sglang_tokens import SGLangTokens
from agentkit.result import RunResult
from agentkit.rollout import Reward, RolloutTask
from agentkit.testing import PolicyRequest, build_test_tokenizer

_AGENTS: dict[str, Agent[Any, Any]] = {}


@tool(timeout=None)
def lookup(q: str) -> str:
    """Look a question up."""
    blocked = [b for b in os.environ.get("ROLLOUT_BLOCK", "").split(",") if b]
    release = os.environ.get("ROLLOUT_RELEASE")
    # hang until the process is killed (or until the release file exists)
    while any(b in q for b in blocked) and not (release and os.path.exists(release)):
        time.sleep(0.05)
    return f"the answer to {q} is 42"


def policy(request: PolicyRequest) -> str:
    last = request.last_message or {}
    if last.get("role") == "tool":
        return f"<think>read it</think>\nAnswer: {last.get('content', '')}"
    question = request.first_user_message or ""
    return (
        "<think>look it up</think>\n<tool_call>lookup\n<arg_key>q</arg_key>\n"
        f"<arg_value>{question}</arg_value>\n</tool_call>"
    )


def make_agent(task: RolloutTask | None = None, base_url: str | None = None) -> Agent[Any, Any]:
    url = base_url or os.environ["ROLLOUT_SERVER_URL"]
    if url not in _AGENTS:
        _AGENTS[url] = Agent(
            model=SGLangTokens(url, build_test_tokenizer()),
            instructions="Answer with the help of lookup.",
            tools=[lookup],
            max_turns=4,
        )
    return _AGENTS[url]


async def close_agents() -> None:
    while _AGENTS:
        _, agent = _AGENTS.popitem()
        await agent.aclose()


def reward(task: RolloutTask, result: RunResult[Any]) -> Reward:
    correct = float(str(task.label) in result.text)
    return Reward(value=correct, components={"correct": correct})


def tasks(n: int) -> list[RolloutTask]:
    return [RolloutTask(id=f"t{i}", prompt=f"question {i}?", label="42") for i in range(n)]


def default_tasks() -> list[RolloutTask]:
    return tasks(int(os.environ.get("ROLLOUT_TASKS", "4")))
