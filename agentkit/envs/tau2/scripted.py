"""A scripted tau2 agent for :class:`agentkit.testing.SGLangTestServer`: it plays the task's gold
assistant actions (one tool call per model turn, GLM-4.5's raw format), turn by turn with the
:class:`~agentkit.envs.tau2.users.GoldScriptedUser`, and tells the user the task's
``communicate_info``. ``broken=True`` plays an agent that never calls a tool.

The task is recognised from the scripted user's opening line (``Task id: <id>``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from agentkit.envs.scripted import tool_call_text

from .domain import Tau2Domain
from .tasks import Tau2Task
from .users import action_runs

if TYPE_CHECKING:  # a policy is called with the test server's request; no runtime import
    from agentkit.testing.policy import PolicyRequest

_TASK_ID = re.compile(r"^Task id: (.+)$", re.MULTILINE)


class Tau2GoldPolicy:
    def __init__(self, domain: Tau2Domain, *, broken: bool = False) -> None:
        self.domain = domain
        self.broken = broken
        self.by_id = {task.id: task for task in domain.tasks}

    def _task(self, request: PolicyRequest) -> Tau2Task | None:
        match = _TASK_ID.match(request.first_user_message or "")
        return self.by_id.get(match.group(1)) if match else None

    def __call__(self, request: PolicyRequest) -> str:
        task = self._task(request)
        if task is None:
            return "I can only play known tau2 tasks."
        roles = [m.get("role") for m in request.messages]
        turn = roles.count("user") - 1
        last_user = len(roles) - 1 - roles[::-1].index("user")
        done = roles[last_user:].count("tool")
        _, agent_runs = action_runs(task.gold_actions)
        run = agent_runs[turn] if 0 <= turn < len(agent_runs) else []
        if not self.broken and done < len(run):
            action = run[done]
            return f"<think>act</think>\n{tool_call_text(action.name, action.arguments)}"
        criteria = task.evaluation_criteria
        infos = (criteria.communicate_info or []) if criteria else []
        said = " ".join(infos)
        return f"<think>reply</think>\nPlease go on with the next step. {said}".strip()
