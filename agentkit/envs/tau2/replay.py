"""Replay actions (each with its requestor) through a tau2 domain after the task's initial
state, without any model: post-initialisation hashes, every observation, final hashes and the
non-LLM reward components."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, TypeAdapter

from .domain import Tau2Domain
from .evaluation import components_summary, evaluate
from .tasks import GoldAction, Tau2Task
from .toolkit import Requestor

_ACTIONS = TypeAdapter(list[GoldAction])


class ReplayStep(BaseModel):
    requestor: Requestor
    name: str
    arguments: dict[str, Any]
    observation: str
    error: bool
    db_hash_after: str
    user_db_hash_after: str | None


class Tau2ReplayResult(BaseModel):
    task_id: str
    post_init_db_hash: str
    post_init_user_db_hash: str | None
    steps: list[ReplayStep] = Field(default_factory=list)
    final_db_hash: str
    final_user_db_hash: str | None
    reward_basis: list[str]
    components: dict[str, Any]
    reward_without_nl: float


def load_tau2_actions(path: Path) -> list[GoldAction]:
    """A JSON list of ``{"name", "arguments", "requestor"}`` (``kwargs`` accepted for
    ``arguments``; requestor defaults to assistant), or a task-like ``{"actions": [...]}``."""
    raw: Any = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(raw, dict):
        raw = raw.get("actions", raw.get("steps"))
    if not isinstance(raw, list):
        raise ValueError(f"{path}: expected a JSON list of actions")
    fixed = [
        {**a, "arguments": a.get("arguments", a.get("kwargs", {}))} if isinstance(a, dict) else a
        for a in raw
    ]
    return _ACTIONS.validate_python(fixed)


def replay_task(
    domain: Tau2Domain, task: Tau2Task, actions: list[GoldAction] | None = None
) -> Tau2ReplayResult:
    """Run ``actions`` (default: the task's gold actions) on the task's initial state, each
    through the environment's response path (sync after each), and score the trajectory with
    a final agent message carrying every ``communicate_info`` string."""
    actions = task.gold_actions if actions is None else actions
    episode = domain.new_episode(task)
    env = episode.env
    post_init = (env.db_hash(), env.user_db_hash())
    steps = []
    for action in actions:
        outcome = episode.call(action.name, action.arguments, action.requestor)
        steps.append(
            ReplayStep(
                requestor=action.requestor,
                name=action.name,
                arguments=action.arguments,
                observation=outcome.content,
                error=outcome.error,
                db_hash_after=env.db_hash(),
                user_db_hash_after=env.user_db_hash(),
            )
        )
    criteria = task.evaluation_criteria
    infos = (criteria.communicate_info or []) if criteria else []
    messages = [" ; ".join(infos)] if infos else []
    reward = evaluate(domain, task, episode.calls, messages, live=env)
    return Tau2ReplayResult(
        task_id=task.id,
        post_init_db_hash=post_init[0],
        post_init_user_db_hash=post_init[1],
        steps=steps,
        final_db_hash=env.db_hash(),
        final_user_db_hash=env.user_db_hash(),
        reward_basis=[kind.value for kind in reward.reward_basis],
        components=components_summary(reward),
        reward_without_nl=reward.reward,
    )
