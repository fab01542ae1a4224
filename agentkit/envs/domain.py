"""Domains and episodes.

A :class:`Domain` is an initial database (re-read for every episode), a policy text, a set of
tools that act on the database, and tasks. An :class:`EpisodeState` is one episode's private copy
of the database plus the log of what happened; it is what the agent's tools receive as
``RunContext.deps``.

Tools (:class:`DomainTool`, an agentkit :class:`Tool`) follow tau-bench's contract: a function
``fn(data, **kwargs) -> str``. Business errors are returned as ``"Error: ..."`` strings, a
Python exception becomes ``"Error: <exception text>"``, and an unknown name gives
``"Unknown action <name>"``. Arguments are passed as the model sent them,
without coercion, because the database hash tells ``150`` from ``150.0``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentkit.agent import Agent
from agentkit.models.base import Model
from agentkit.toolset import Toolset

from .domain_agent import domain_agent
from .env_tool import ERROR_PREFIX, EnvTool
from .hashing import HashCache
from .tasks import RESPOND_ACTION, Action, Task

DomainFunction = Callable[..., Any]  # fn(data, **arguments) -> str, tau-bench's invoke
TAU_BENCH_TOOL_CALLS_PER_TURN = 1  # tau-bench's Env.step takes one action per model turn


def class_name(tool_name: str) -> str:
    """tau-bench's class name for a tool (``find_user_id_by_email`` -> ``FindUserIdByEmail``)."""
    return "".join(part.capitalize() for part in tool_name.split("_"))


class LoadedData:
    """The database files of a domain, read once; :meth:`fresh` parses a private copy."""

    def __init__(self, files: Mapping[str, Path]) -> None:
        self.texts = {key: path.read_text(encoding="utf-8") for key, path in files.items()}

    @classmethod
    def from_objects(cls, objects: Mapping[str, Any]) -> LoadedData:
        loaded = cls({})
        loaded.texts = {key: json.dumps(value) for key, value in objects.items()}
        return loaded

    def fresh(self) -> dict[str, Any]:
        return {key: json.loads(text) for key, text in self.texts.items()}


@dataclass
class Domain:
    """Database + policy + tools + tasks. Build one with :func:`agentkit.envs.load_domain`."""

    name: str
    policy: str
    toolset: Toolset
    data: LoadedData
    tasks: list[Task] = field(default_factory=list)
    # tau-bench runs only the first tool call of a model turn; the agent drops the others
    max_tool_calls_per_turn: int | None = TAU_BENCH_TOOL_CALLS_PER_TURN
    _gold_hashes: dict[int, str] = field(default_factory=dict, repr=False)
    _hash_cache: HashCache | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for item in self.toolset:
            if not isinstance(item, DomainTool):
                raise TypeError(f"domain {self.name}: tool {item.name!r} is not a DomainTool")
        self.by_name: dict[str, DomainTool] = {
            item.name: item for item in self.toolset if isinstance(item, DomainTool)
        }

    def db_hash(self, data: dict[str, Any]) -> str:
        """tau-bench's hash of ``data`` (fast for databases close to the initial one)."""
        if self._hash_cache is None:
            self._hash_cache = HashCache(self.data.fresh())
        return self._hash_cache.db_hash(data)

    @property
    def terminate_tools(self) -> frozenset[str]:
        return frozenset(name for name, item in self.by_name.items() if item.terminates)

    def tools(self) -> Toolset:
        """The domain's tools, for an agent whose ``deps`` is an :class:`EpisodeState`."""
        return self.toolset

    def tools_schema(self) -> list[dict[str, Any]]:
        return [item.schema() for item in self.toolset]

    def agent(self, model: Model, **options: Any) -> Agent[Any, str]:
        """An agent for this domain: its policy as instructions, its tools, and tau-bench's
        per-turn call limit (:attr:`max_tool_calls_per_turn`); ``options`` are further
        :class:`~agentkit.agent.Agent` arguments and override these."""
        return domain_agent(self, "tau", model, options)

    def new_episode(self, task: Task | None = None, task_index: int | None = None) -> EpisodeState:
        """A fresh copy of the database for one episode."""
        return EpisodeState(domain=self, data=self.data.fresh(), task=task, task_index=task_index)

    def gold_hash(self, task: Task, task_index: int | None = None) -> str:
        """Hash of the database after replaying the task's gold actions (cached per index)."""
        if task_index is not None and task_index in self._gold_hashes:
            return self._gold_hashes[task_index]
        state = self.new_episode(task)
        for action in task.actions:
            if action.name not in self.terminate_tools:
                state.step(action.name, action.kwargs)
        digest = self.db_hash(state.data)
        if task_index is not None:
            self._gold_hashes[task_index] = digest
        return digest


@dataclass
class EpisodeState:
    """One episode: its own database, the actions taken (tool calls and ``respond``), and whether
    a terminating tool (``transfer_to_human_agents``) ended it."""

    domain: Domain
    data: dict[str, Any]
    task: Task | None = None
    task_index: int | None = None
    actions: list[Action] = field(default_factory=list)
    terminated: bool = False

    def step(self, name: str, kwargs: Mapping[str, Any]) -> str:
        """Invoke a tool by name, log the action, return the observation string. After a
        terminating tool nothing runs any more (tau-bench ends the episode right there)."""
        if self.terminated:
            return f"{ERROR_PREFIX}the conversation was transferred; {name} was not run"
        tool = self.domain.by_name.get(name)
        if tool is None:
            self.actions.append(Action(name=name, kwargs=dict(kwargs)))
            return f"Unknown action {name}"
        return self.run(tool, kwargs)

    def run(self, tool: DomainTool, kwargs: Mapping[str, Any]) -> str:
        """Invoke ``tool`` on this episode's database and log the action (see :meth:`step`)."""
        if self.terminated:
            return f"{ERROR_PREFIX}the conversation was transferred; {tool.name} was not run"
        self.actions.append(Action(name=tool.name, kwargs=dict(kwargs)))
        observation = tool.invoke(self.data, kwargs)
        if tool.terminates:
            self.terminated = True
        return observation

    def respond(self, content: str) -> None:
        """Log something the agent said to the user (checked against the task's outputs)."""
        self.actions.append(Action(name=RESPOND_ACTION, kwargs={"content": content}))

    def db_hash(self) -> str:
        return self.domain.db_hash(self.data)


class DomainTool(EnvTool[EpisodeState]):
    """A tool of a tau-bench style domain, as an agentkit :class:`Tool`.

    ``function(data, **arguments) -> str`` acts on the episode's database, which the tool takes
    from ``ctx.deps`` (an :class:`EpisodeState`, whose action log records the call). Arguments
    reach it exactly as the model sent them (no validation, no coercion); an ``"Error: ..."``
    observation is an error outcome with the same text.

    Args:
        name: tau-bench's tool name.
        description: what the model reads.
        parameters: tau-bench's JSON schema of the arguments.
        function: the tool's effect, ``function(data, **arguments) -> str``.
        mutates: the tool may change the database.
        terminates: calling it ends the episode (``transfer_to_human_agents``).
    """

    episode_type = EpisodeState

    def __init__(
        self,
        name: str,
        description: str,
        parameters: Mapping[str, Any],
        function: DomainFunction,
        *,
        mutates: bool = False,
        terminates: bool = False,
    ) -> None:
        super().__init__(name, description, parameters)
        # named like tau-bench's ``<Class>.invoke``, so Python's own argument errors
        # (``... missing 1 required positional argument: 'reason'``) read the same
        function.__qualname__ = f"{class_name(name)}.invoke"
        self.function = function
        self.mutates = mutates
        self.terminates = terminates

    def invoke(self, data: dict[str, Any], arguments: Mapping[str, Any]) -> str:
        """Run the function as tau-bench's ``Env.step`` does: exceptions become ``"Error: ..."``."""
        try:
            result = self.function(data, **arguments)
        except Exception as exc:
            return f"{ERROR_PREFIX}{exc}"
        if not isinstance(result, str):
            # tau-bench crashes here (its response model needs a string); an observation is kinder.
            return f"{ERROR_PREFIX}tool {self.name} returned no result"
        return result

    def with_text(self, description: str, parameters: Mapping[str, Any]) -> DomainTool:
        """The same tool showing another description and schema (tau-bench's exact text)."""
        clone = copy.copy(self)
        clone.description = description
        clone.parameters = dict(parameters)
        return clone

    def observe(self, episode: EpisodeState, arguments: dict[str, Any]) -> tuple[str, bool]:
        observation = episode.run(self, arguments)
        return observation, observation.startswith(ERROR_PREFIX)
