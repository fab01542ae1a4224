"""tau2's evaluation rules: action matching with compare_args, communicate-info, the DB check of
both databases, endings that score 0, NL assertions through a judge model, pass^k."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from agentkit.envs.domains.tau2 import retail, telecom
from agentkit.envs.tau2.domain import Tau2Domain
from agentkit.envs.tau2.episode import Tau2Ending, Tau2EpisodeResult
from agentkit.envs.tau2.evaluation import Tau2Reward, evaluate
from agentkit.envs.tau2.judge import NLJudge, parse_verdicts
from agentkit.envs.tau2.runner import Tau2RunSummary, render_tau2_table
from agentkit.envs.tau2.tasks import GoldAction, RewardType
from agentkit.models import SGLangChat
from agentkit.testing import SGLangTestServer
from tests.shared import shared_file

OVERDUE = "[service_issue]airplane_mode_on|overdue_bill_suspension[PERSONA:None]"


def _domain(name: str) -> Tau2Domain:
    module = telecom if name == "telecom" else retail
    loaded: Tau2Domain = module.load(Path(shared_file("tau2", name)))
    return loaded


def test_compare_args_rule() -> None:
    gold = GoldAction(name="refuel_data", arguments={"line_id": "L1", "gb_amount": 2.0})
    # None: the predicted call's own arguments are compared (tau2's rule)
    assert gold.matches("refuel_data", {"line_id": "L1", "gb_amount": 2.0})
    assert gold.matches("refuel_data", {"line_id": "L1"})
    assert not gold.matches("refuel_data", {"line_id": "L1", "gb_amount": 3.0})
    assert not gold.matches("enable_roaming", {"line_id": "L1"})
    only_line = gold.model_copy(update={"compare_args": ["line_id"]})
    assert only_line.matches("refuel_data", {"line_id": "L1", "gb_amount": 9.0})
    anything = gold.model_copy(update={"compare_args": []})
    assert anything.matches("refuel_data", {"summary": "whatever"})


def _gold_episode(domain: Tau2Domain, task_id: str) -> Any:
    task = domain.task(task_id)
    episode = domain.new_episode(task)
    for action in task.gold_actions:
        episode.call(action.name, action.arguments, action.requestor)
    return task, episode


def test_dual_control_reward_needs_both_sides() -> None:
    domain = _domain("telecom")
    task, episode = _gold_episode(domain, OVERDUE)
    full = evaluate(domain, task, episode.calls, [], ending="user_stop")
    assert full.reward == 1.0 and full.success
    assert [c.met for c in full.env_assertions] == [True, True]
    assert all(full.actions_matched.values())
    # without the user's payment the line stays suspended
    no_payment = [c for c in episode.calls if c.name != "make_payment"]
    partial = evaluate(domain, task, no_payment, [], ending="user_stop")
    assert partial.reward == 0.0
    assert partial.missed == ["ENV_ASSERTION"]
    assert partial.actions_matched["make_payment_2"] is False
    assert partial.user_db_hash != partial.gold_user_db_hash


@pytest.mark.parametrize("ending", ["max_steps", "too_many_errors", "agent_error"])
def test_endings_other_than_a_stop_score_zero(ending: str) -> None:
    domain = _domain("telecom")
    task, episode = _gold_episode(domain, OVERDUE)
    reward = evaluate(domain, task, episode.calls, [], ending=ending)
    assert reward.reward == 0.0
    assert reward.missed == [f"ending:{ending}"]
    assert evaluate(domain, task, episode.calls, [], ending=Tau2Ending.AGENT_STOP.value).success


class VerdictPolicy:
    def __init__(self, met: bool) -> None:
        self.met = met

    def __call__(self, request: Any) -> str:
        flag = "true" if self.met else "false"
        return (
            '<think>grade</think>\n{"results": [{"expectation": "x", "met": '
            + flag
            + ', "justification": "read the conversation"}]}'
        )


@pytest.mark.parametrize("met", [True, False])
def test_nl_assertions_through_a_judge_model(met: bool) -> None:
    domain = _domain("retail")
    task, episode = _gold_episode(domain, "2")
    assert task.evaluation_criteria is not None
    assert RewardType.NL_ASSERTION in task.evaluation_criteria.reward_basis
    episode.agent_messages.append("There are 10 t-shirt options available.")

    async def judged() -> Any:
        async with SGLangTestServer(policy=VerdictPolicy(met)) as server:
            model = SGLangChat([server.base_url], model="default")
            try:
                return await NLJudge(model).judge(task, episode)
            finally:
                await model.aclose()

    verdicts = anyio.run(judged)
    assert [v.met for v in verdicts] == [met]
    assert verdicts[0].justification == "read the conversation"
    reward = evaluate(
        domain,
        task,
        episode.calls,
        episode.agent_messages,
        ending="user_stop",
        nl_verdicts=verdicts,
        live=episode.env,
    )
    assert reward.db_match is True
    assert reward.reward == (1.0 if met else 0.0)
    assert reward.missed == ([] if met else ["NL_ASSERTION"])
    # no judge: the component is reported unevaluated and left out of the reward
    unjudged = evaluate(domain, task, episode.calls, [], ending="user_stop", live=episode.env)
    assert unjudged.unevaluated == ["NL_ASSERTION"] and unjudged.reward == 1.0


def test_unreadable_verdicts_count_as_not_met() -> None:
    verdicts = parse_verdicts("I think it went fine.", ["a", "b"])
    assert [v.met for v in verdicts] == [False, False]


def test_communicate_info_ignores_case_and_commas() -> None:
    domain = _domain("telecom")
    task, episode = _gold_episode(domain, OVERDUE)
    criteria = task.evaluation_criteria
    assert criteria is not None
    criteria.communicate_info = ["1093.34"]
    criteria.reward_basis = [RewardType.COMMUNICATE]
    assert evaluate(domain, task, episode.calls, ["Total: 1,093.34"], ending="user_stop").success
    missing = evaluate(domain, task, episode.calls, ["Total: 1093"], ending="user_stop")
    assert missing.missed == ["COMMUNICATE"]


def _result(index: int, trial: int, reward: float | None) -> Tau2EpisodeResult:
    base: dict[str, Any] = {"domain": "telecom", "task_id": f"t{index}", "task_index": index}
    if reward is None:
        return Tau2EpisodeResult(
            **base, trial=trial, episode_id="e", ending=Tau2Ending.INFRASTRUCTURE, error="down"
        )
    scored = Tau2Reward(
        reward=reward,
        reward_basis=[RewardType.ENV_ASSERTION],
        db_match=True,
        db_hash="h",
        user_db_hash=None,
        gold_db_hash="h",
        gold_user_db_hash=None,
        missed=[] if reward == 1.0 else ["ENV_ASSERTION"],
    )
    return Tau2EpisodeResult(
        **base, trial=trial, episode_id="e", ending=Tau2Ending.USER_STOP, reward=scored
    )


def test_pass_hat_k_over_trials_leaves_infrastructure_failures_out() -> None:
    summary = Tau2RunSummary(domain="telecom", task_indices=[0, 1], trials=3)
    summary.results = [
        _result(0, 0, 1.0),
        _result(0, 1, 1.0),
        _result(0, 2, 0.0),
        _result(1, 0, 1.0),
        _result(1, 1, 1.0),
        _result(1, 2, None),
    ]
    # task 0: 2 of 3; task 1: 2 of 2 scored
    assert summary.pass_hat_k() == {
        1: pytest.approx((2 / 3 + 1) / 2),
        2: pytest.approx((1 / 3 + 1) / 2),
    }
    table = render_tau2_table(summary)
    assert "task 0 trial 2: missed ENV_ASSERTION" in table
    assert "task 1 trial 2: down" in table
