"""A tau2 domain (policy, environment factory, tasks, tool schemas of both sides) and one
episode's state, which the agent's tools and the simulated user's tools share as ``deps``.

Every tool call of an episode is logged in order with its requestor, so the evaluation can
rebuild the final state exactly as tau2 does (:mod:`agentkit.envs.tau2.evaluation`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentkit.agent import Agent
from agentkit.models.base import Model
from agentkit.toolset import Toolset

from ..domain_agent import domain_agent
from ..env_tool import EnvTool
from .environment import Observation, Tau2Environment
from .tasks import Tau2Task
from .toolkit import Requestor


def read_schemas(path: Path) -> list[dict[str, Any]]:
    """tau2's tool schemas (``[{"type": "function", "function": {...}}]``); empty if absent."""
    if not path.is_file():
        return []
    raw: Any = json.loads(path.read_text(encoding="utf-8"))
    return list(raw)


@dataclass(frozen=True)
class LoggedCall:
    requestor: Requestor
    name: str
    arguments: dict[str, Any]
    observation: str
    error: bool


@dataclass
class Tau2Episode:
    """One episode: its environment (task state applied), the tool calls of both sides and the
    agent's messages to the user."""

    domain: Tau2Domain
    task: Tau2Task
    env: Tau2Environment
    calls: list[LoggedCall] = field(default_factory=list)
    agent_messages: list[str] = field(default_factory=list)
    transferred: bool = False

    def call(self, name: str, arguments: Mapping[str, Any], requestor: Requestor) -> Observation:
        result = self.env.respond(name, arguments, requestor)
        self.calls.append(
            LoggedCall(requestor, name, dict(arguments), result.content, result.error)
        )
        if requestor == "assistant" and name == "transfer_to_human_agents" and not result.error:
            self.transferred = True
        return result


@dataclass
class Tau2Domain:
    name: str
    policy: str
    make_env: Callable[[], Tau2Environment]
    tasks: list[Tau2Task]
    agent_schemas: list[dict[str, Any]]
    user_schemas: list[dict[str, Any]] = field(default_factory=list)
    # tau2-bench runs every tool call of an assistant turn
    max_tool_calls_per_turn: int | None = None

    def task(self, task_id: str) -> Tau2Task:
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise KeyError(f"{self.name}: no task {task_id!r}")

    def fresh_env(self, task: Tau2Task | None = None) -> Tau2Environment:
        env = self.make_env()
        if task is not None:
            env.apply_initial_state(task)
        return env

    def agent(self, model: Model, **options: Any) -> Agent[Any, str]:
        """An agent for this domain: its policy as instructions, its agent tools, and tau2's
        per-turn call limit (:attr:`max_tool_calls_per_turn`); ``options`` are further
        :class:`~agentkit.agent.Agent` arguments and override these."""
        return domain_agent(self, "tau2", model, options)

    def new_episode(self, task: Tau2Task) -> Tau2Episode:
        return Tau2Episode(domain=self, task=task, env=self.fresh_env(task))

    def tools(self) -> Toolset:
        """The agent's tools (deps: a :class:`Tau2Episode`)."""
        return Toolset(Tau2Tool(schema, "assistant") for schema in self.agent_schemas)

    def user_tools(self) -> Toolset:
        """The simulated user's device tools (dual-control domains)."""
        return Toolset(Tau2Tool(schema, "user") for schema in self.user_schemas)


class Tau2Tool(EnvTool[Tau2Episode]):
    """One tau2 tool for one side of the conversation (the agent or the simulated user), from
    its tau2 schema; it runs in the :class:`Tau2Episode` passed as deps."""

    episode_type = Tau2Episode

    def __init__(self, schema: Mapping[str, Any], requestor: Requestor) -> None:
        function = schema["function"]
        super().__init__(
            function["name"],
            function.get("description", ""),
            function.get("parameters", {"type": "object", "properties": {}}),
        )
        self.requestor: Requestor = requestor

    def observe(self, episode: Tau2Episode, arguments: dict[str, Any]) -> tuple[str, bool]:
        result = episode.call(self.name, arguments, self.requestor)
        return result.content, result.error
