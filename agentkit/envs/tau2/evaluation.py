"""tau2-bench's evaluation of an episode.

Components (each computed for every episode; the reward multiplies those in the task's
``reward_basis``):

- ``DB``: the final agent and user database hashes equal the gold environment's. The gold
  environment is a fresh one with the task's initial state and the gold actions run in order
  (errors ignored, no sync between them); the predicted one is rebuilt from the episode: the same
  initial state, then every *mutating* tool call of the episode replayed with a sync after each.
- ``ENV_ASSERTION``: each assertion function, run on the predicted environment, returns its
  ``assert_value``.
- ``ACTION``: every gold action is matched by some tool call of either side (same name, equal
  arguments restricted to ``compare_args``; all the call's arguments when that is None).
- ``COMMUNICATE``: each ``communicate_info`` string, lowercased, is a substring of some agent
  message, lowercased with its commas removed.
- ``NL_ASSERTION``: a judge model's verdict per assertion (see :mod:`.judge`); with no judge
  the component is reported as not evaluated and the reward leaves it out.

An episode that did not end by the agent's or the user's stop scores 0 whatever the components.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from .domain import LoggedCall, Tau2Domain
from .environment import Tau2Environment
from .tasks import RewardType, Tau2Task

SUCCESS_TOLERANCE = 1e-6
SCORED_ENDINGS = frozenset({"agent_stop", "user_stop"})


class AssertionCheck(BaseModel):
    func_name: str
    env_type: str
    met: bool
    error: str | None = None


class NLVerdict(BaseModel):
    assertion: str
    met: bool
    justification: str = ""


class Tau2Reward(BaseModel):
    reward: float
    reward_basis: list[RewardType]
    db_match: bool
    db_hash: str
    user_db_hash: str | None
    gold_db_hash: str
    gold_user_db_hash: str | None
    env_assertions: list[AssertionCheck] = Field(default_factory=list)
    actions_matched: dict[str, bool] = Field(default_factory=dict)
    communicated: dict[str, bool] = Field(default_factory=dict)
    nl_assertions: list[NLVerdict] | None = None
    ending: str | None = None
    missed: list[str] = Field(default_factory=list)
    unevaluated: list[str] = Field(default_factory=list)

    @property
    def success(self) -> bool:
        return abs(self.reward - 1.0) <= SUCCESS_TOLERANCE

    def component(self, kind: RewardType) -> float | None:
        """1.0 or 0.0 for one component; None for NL assertions nobody judged."""
        if kind is RewardType.DB:
            return float(self.db_match)
        if kind is RewardType.ENV_ASSERTION:
            return float(all(check.met for check in self.env_assertions))
        if kind is RewardType.ACTION:
            return float(all(self.actions_matched.values()))
        if kind is RewardType.COMMUNICATE:
            return float(all(self.communicated.values()))
        if self.nl_assertions is None:
            return None
        return float(all(v.met for v in self.nl_assertions))


def gold_environment(domain: Tau2Domain, task: Tau2Task) -> Tau2Environment:
    env = domain.fresh_env(task)
    for action in task.gold_actions:
        # tau2 ignores gold actions that fail (some tasks intend them to)
        with contextlib.suppress(Exception):
            env.make_tool_call(action.name, action.arguments, action.requestor)
    return env


def predicted_environment(
    domain: Tau2Domain,
    task: Tau2Task,
    calls: Sequence[LoggedCall],
    live: Tau2Environment | None = None,
) -> Tau2Environment:
    """The episode's final state rebuilt from its mutating calls. Without a sync hook that
    is exactly the live environment's state (read-only tools change nothing), so ``live`` is
    used as it is when given."""
    if live is not None and not live.has_sync:
        return live
    env = domain.fresh_env(task)
    for call in calls:
        if env.has_tool(call.name) and env.mutates(call.name):
            env.respond(call.name, call.arguments, call.requestor)
    env.sync()
    return env


def _assertions(task: Tau2Task, env: Tau2Environment) -> list[AssertionCheck]:
    criteria = task.evaluation_criteria
    checks = []
    for assertion in (criteria.env_assertions or []) if criteria else []:
        try:
            met, error = env.check(assertion), None
        except Exception as exc:
            met, error = False, f"{type(exc).__name__}: {exc}"
        checks.append(
            AssertionCheck(
                func_name=assertion.func_name, env_type=assertion.env_type, met=met, error=error
            )
        )
    return checks


def actions_matched(task: Tau2Task, calls: Sequence[LoggedCall]) -> dict[str, bool]:
    out: dict[str, bool] = {}
    for index, gold in enumerate(task.gold_actions):
        key = gold.action_id or f"{index}:{gold.name}"
        out[key] = any(gold.matches(call.name, call.arguments) for call in calls)
    return out


def communicated(task: Tau2Task, agent_messages: Sequence[str]) -> dict[str, bool]:
    criteria = task.evaluation_criteria
    said = [text.lower().replace(",", "") for text in agent_messages]
    infos = (criteria.communicate_info or []) if criteria else []
    return {info: any(info.lower() in text for text in said) for info in infos}


def evaluate(
    domain: Tau2Domain,
    task: Tau2Task,
    calls: Sequence[LoggedCall],
    agent_messages: Sequence[str],
    *,
    ending: str | None = None,
    nl_verdicts: list[NLVerdict] | None = None,
    live: Tau2Environment | None = None,
) -> Tau2Reward:
    """Score an episode's tool calls and agent messages against the task (see module doc).
    ``ending`` None scores the trajectory as if it had ended properly."""
    criteria = task.evaluation_criteria
    basis = list(criteria.reward_basis) if criteria else []
    if nl_verdicts is None and not (criteria and criteria.nl_assertions):
        nl_verdicts = []  # nothing to judge: the component holds vacuously
    gold = gold_environment(domain, task)
    predicted = predicted_environment(domain, task, calls, live)
    result = Tau2Reward(
        reward=0.0,
        reward_basis=basis,
        db_match=(predicted.db_hash(), predicted.user_db_hash())
        == (gold.db_hash(), gold.user_db_hash()),
        db_hash=predicted.db_hash(),
        user_db_hash=predicted.user_db_hash(),
        gold_db_hash=gold.db_hash(),
        gold_user_db_hash=gold.user_db_hash(),
        env_assertions=_assertions(task, predicted),
        actions_matched=actions_matched(task, calls),
        communicated=communicated(task, agent_messages),
        nl_assertions=nl_verdicts,
        ending=ending,
    )
    reward = 1.0
    missed: list[str] = []
    for kind in basis:
        value = result.component(kind)
        if value is None:
            result.unevaluated.append(kind.value)
            continue
        if value < 1.0:
            missed.append(kind.value)
        reward *= value
    if ending is not None and ending not in SCORED_ENDINGS:
        missed.append(f"ending:{ending}")
        reward = 0.0
    result.reward = reward
    result.missed = missed
    return result


def components_summary(reward: Tau2Reward) -> dict[str, Any]:
    """The non-LLM components in the layout of the shared gold replays."""
    checks = reward.env_assertions
    return {
        "DB": {"match": reward.db_match},
        "ENV_ASSERTION": {
            "n": len(checks),
            "all_met": all(c.met for c in checks),
            "met": [c.met for c in checks],
        },
        "ACTION": {"reward": float(all(reward.actions_matched.values()))},
        "COMMUNICATE": {"reward": float(all(reward.communicated.values()))},
    }


def reward_components(reward: Tau2Reward) -> dict[str, Any]:
    """The components as an episode's ``reward_components`` (what training exports carry): each
    of tau2's five checks as 1.0 or 0.0 (``None``: not evaluated, e.g. NL assertions without a
    judge), the task's reward basis, the components the reward ``missed`` (with
    ``ending:<ending>`` when the episode did not end properly), and every detail in ``detail``."""
    return {
        "db": reward.component(RewardType.DB),
        "env_assertion": reward.component(RewardType.ENV_ASSERTION),
        "action": reward.component(RewardType.ACTION),
        "communicate": reward.component(RewardType.COMMUNICATE),
        "nl": reward.component(RewardType.NL_ASSERTION),
        "reward_basis": [kind.value for kind in reward.reward_basis],
        "missed": list(reward.missed),
        "unevaluated": list(reward.unevaluated),
        "ending": reward.ending,
        "detail": reward.model_dump(mode="json"),
    }
