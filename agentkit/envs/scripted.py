"""Scripted players for tests, demos and model-free smoke runs.

:class:`GoldPolicy` is a policy for :class:`agentkit.testing.SGLangTestServer` that plays an
agent doing exactly a task's gold actions (one tool call per turn, in GLM-4.5's raw format) and
then telling the user the task's required outputs. The task is recognised by the first user
message, which :func:`instruction_user` makes the task's instruction.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .domain import Domain
from .tasks import Task
from .user import ScriptedUser

if TYPE_CHECKING:  # a policy is called with the test server's request; no runtime import
    from agentkit.testing.policy import PolicyRequest


def tool_call_text(name: str, kwargs: Mapping[str, Any]) -> str:
    """A GLM-4.5 tool call: string values raw, other values as JSON."""
    parts = [f"<tool_call>{name}"]
    for key, value in kwargs.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        parts.append(f"<arg_key>{key}</arg_key>\n<arg_value>{shown}</arg_value>")
    return "\n".join(parts) + "\n</tool_call>"


def gold_script(domain: Domain, task: Task) -> list[str]:
    """Raw completions: each gold action, then a closing message stating the outputs."""
    steps = [
        f"<think>step {i + 1}</think>\n{tool_call_text(action.name, action.kwargs)}"
        for i, action in enumerate(task.actions)
    ]
    summary = "Done." + (" " + " ".join(task.outputs) if task.outputs else "")
    return [*steps, f"<think>report</think>\n{summary}"]


def instruction_user(task: Task) -> ScriptedUser:
    """A user who states the instruction, then stops after the agent's first reply."""
    return ScriptedUser([task.instruction])


class GoldPolicy:
    """Test-server policy: the gold agent for whichever task the conversation is about."""

    def __init__(self, domain: Domain) -> None:
        self.domain = domain
        self.by_instruction = {task.instruction: task for task in domain.tasks}

    def __call__(self, request: PolicyRequest) -> str:
        first = request.first_user_message or ""
        task = self.by_instruction.get(first)
        if task is None:
            return "I can only replay known tasks."
        script = gold_script(self.domain, task)
        turn = request.assistant_turns
        return script[min(turn, len(script) - 1)]
