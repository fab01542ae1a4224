"""tau2 tasks as RL rollouts: GRPO groups of dual-control episodes, scored by tau2's evaluation.

:func:`tau2_tasks` turns a domain's tasks into :class:`~agentkit.rollout.RolloutTask` s whose
metadata (``metadata["tau2"]``, a :class:`Tau2TaskSpec`) holds everything one sample needs to
build its own episode: the domain's data folder, the tau2 task id, the user side (``"gold"``,
the scripted user replaying the gold user actions, or a :class:`Tau2ModelSpec` for a model
playing the customer), the NL judge and the limits. Nothing is shared between samples: every
sample gets a fresh environment (both databases) and a user of its own. The specs are plain
JSON, so the tasks travel through a tasks file, a ``module:function`` spec and Ray alike.

:func:`tau2_episode` has :func:`agentkit.rollout_episode.run_episode`'s signature and plays one
sample through :func:`~agentkit.envs.tau2.episode.run_tau2_episode` into the rollout's store
(``task_id`` and ``group_id`` the rollout task's id, ``<domain>/<tau2 task id>``;
``sample_index`` k), closing it with tau2's reward and its components (see
:func:`~agentkit.envs.tau2.evaluation.reward_components`). Failures of the model server, the
user simulator or the judge are infrastructure failures (left out of exports, rerun on resume);
a policy that fails the task scores 0 with the components it missed.

:class:`Tau2AgentFactory` makes the agent for a task's domain (its policy and tools) on a model
of the caller's choice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from agentkit.agent import Agent
from agentkit.models.base import Model
from agentkit.rollout_episode import RewardFn, RolloutTask
from agentkit.trajectory.store import JsonlStore

from .commands import select_tasks
from .domain import Tau2Domain
from .episode import DEFAULT_MAX_ERRORS, DEFAULT_MAX_STEPS, run_tau2_episode
from .judge import NLJudge
from .users import GoldScriptedUser, Tau2ModelUser, Tau2User

SPEC_KEY = "tau2"


class Tau2ModelSpec(BaseModel):
    """A served model by address (what a simulated user or a judge runs on), as plain data so it
    travels with the task; every sample builds its own client from it and closes it after."""

    base_urls: list[str]
    model: str = "default"
    mode: Literal["chat", "tokens"] = "chat"
    tokenizer: str | None = None
    """tokenizer.json or its folder (token mode only)"""
    thinking: bool = False
    temperature: float | None = None

    def build(self) -> Model:
        from agentkit.models import SGLangChat
        from agentkit.models.base import ModelSettings

        settings = ModelSettings(temperature=self.temperature)
        if self.mode == "chat":
            return SGLangChat(self.base_urls, model=self.model, settings=settings)
        from agentkit.models.sglang_tokens import SGLangTokens

        if self.tokenizer is None:
            raise ValueError("a token-mode model needs a tokenizer")
        return SGLangTokens(self.base_urls, self.tokenizer, model=self.model, settings=settings)


class Tau2TaskSpec(BaseModel):
    """One tau2 task as a rollout needs it (``RolloutTask.metadata["tau2"]``)."""

    domain: str
    data_dir: str
    task_id: str
    user: Literal["gold"] | Tau2ModelSpec = "gold"
    judge: Tau2ModelSpec | None = None
    max_steps: int = DEFAULT_MAX_STEPS
    max_errors: int = DEFAULT_MAX_ERRORS

    @classmethod
    def of(cls, task: RolloutTask) -> Tau2TaskSpec:
        if SPEC_KEY not in task.metadata:
            raise ValueError(f"task {task.id!r} is not a tau2 task (no metadata['{SPEC_KEY}'])")
        return cls.model_validate(task.metadata[SPEC_KEY])


@lru_cache(maxsize=16)
def _domain(name: str, data_dir: str) -> Tau2Domain:
    """A domain loaded once per process (its episodes each build a fresh environment)."""
    from ..registry import load_tau2_domain

    return load_tau2_domain(name, data_dir)


def load_spec_domain(spec: Tau2TaskSpec) -> Tau2Domain:
    return _domain(spec.domain, str(Path(spec.data_dir).expanduser().resolve()))


def tau2_tasks(
    domain: str,
    data_dir: str | Path,
    *,
    task_ids: Sequence[str] | None = None,
    split: str | None = None,
    user: Literal["gold"] | Tau2ModelSpec = "gold",
    judge: Tau2ModelSpec | None = None,
    max_steps: int = DEFAULT_MAX_STEPS,
    max_errors: int = DEFAULT_MAX_ERRORS,
) -> list[RolloutTask]:
    """The rollout tasks of a tau2 domain: ``task_ids`` in that order, else the tasks of
    ``split`` (``split_tasks.json``; None or ``all``: every task in the folder)."""
    folder = Path(data_dir).expanduser().resolve()
    loaded = _domain(domain, str(folder))
    if task_ids is not None:
        chosen = [loaded.task(task_id) for task_id in task_ids]
    else:
        chosen = [loaded.tasks[i] for i in select_tasks(loaded, folder, split)]
    tasks = []
    for task in chosen:
        spec = Tau2TaskSpec(
            domain=domain,
            data_dir=str(folder),
            task_id=task.id,
            user=user,
            judge=judge,
            max_steps=max_steps,
            max_errors=max_errors,
        )
        tasks.append(
            RolloutTask(
                id=f"{domain}/{task.id}",
                prompt=task.user_scenario.text(),
                metadata={SPEC_KEY: spec.model_dump(mode="json")},
            )
        )
    return tasks


def _user(spec: Tau2TaskSpec) -> tuple[Tau2User, Model | None]:
    if spec.user == "gold":
        return GoldScriptedUser(), None
    model = spec.user.build()
    return Tau2ModelUser(model, thinking=spec.user.thinking), model


def _judge(spec: Tau2TaskSpec) -> NLJudge | None:
    if spec.judge is None:
        return None
    return NLJudge(spec.judge.build(), thinking=spec.judge.thinking)


async def tau2_episode(
    agent: Agent[Any, Any],
    task: RolloutTask,
    sample_index: int,
    store: JsonlStore,
    reward_fn: RewardFn | None,
) -> tuple[str, str | None]:
    """Sample ``sample_index`` of a tau2 rollout task: its episode id and, for an
    infrastructure failure, the error (a policy failure is a scored episode, no error)."""
    if reward_fn is not None:
        return "", "tau2 episodes are scored by tau2's evaluation: run them without --reward"
    try:
        spec = Tau2TaskSpec.of(task)
        domain = load_spec_domain(spec)
        index = next((i for i, t in enumerate(domain.tasks) if t.id == spec.task_id), None)
        if index is None:
            raise ValueError(f"{spec.domain}: no task {spec.task_id!r} in {spec.data_dir}")
        judge = _judge(spec)
        user, user_model = _user(spec)
    except (ValueError, ValidationError) as exc:
        return "", f"tau2 task {task.id!r}: {exc}"
    try:
        result = await run_tau2_episode(
            agent,
            domain,
            index,
            user,
            trial=sample_index,
            max_steps=spec.max_steps,
            max_errors=spec.max_errors,
            recorder=store,
            judge=judge,
            task_key=task.id,
            metadata=dict(task.metadata),
            label=task.label,
        )
    finally:
        for model in (user_model, judge.model if judge is not None else None):
            if model is not None:
                await model.aclose()
    return result.episode_id, result.error if result.infrastructure_failure else None


class Tau2AgentFactory:
    """An agent factory for ``rollout`` / ``agentkit rollout --agent``: the agent of a task's
    domain (its policy as instructions, its agent tools), one per domain, on the model
    ``model`` builds (a :class:`Tau2ModelSpec`, or a function returning a model)."""

    def __init__(
        self,
        model: Tau2ModelSpec | Callable[[], Model],
        *,
        thinking: bool = False,
        max_steps: int = DEFAULT_MAX_STEPS,
    ) -> None:
        self.model = model
        self.thinking = thinking
        self.max_steps = max_steps
        self._agents: dict[tuple[str, str], Agent[Any, Any]] = {}

    def __getstate__(self) -> dict[str, Any]:
        # shipped to Ray workers without the agents made here (each worker makes its own)
        return {**self.__dict__, "_agents": {}}

    def __call__(self, task: RolloutTask) -> Agent[Any, Any]:
        spec = Tau2TaskSpec.of(task)
        key = (spec.domain, spec.data_dir)
        if key not in self._agents:
            domain = load_spec_domain(spec)
            model = self.model.build() if isinstance(self.model, Tau2ModelSpec) else self.model()
            self._agents[key] = domain.agent(
                model, thinking=self.thinking, max_turns=self.max_steps
            )
        return self._agents[key]


__all__ = [
    "SPEC_KEY",
    "Tau2AgentFactory",
    "Tau2ModelSpec",
    "Tau2TaskSpec",
    "load_spec_domain",
    "tau2_episode",
    "tau2_tasks",
]
