"""Gold actions of every tau-bench test task, replayed through agentkit's tools, give
tau-bench's observations, its database hash, and reward 1.0."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentkit.envs import load_domain
from agentkit.envs.replay import replay
from agentkit.envs.reward import compute_reward
from tests.shared import shared_file


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("domain_name", "split"), [("retail", "test"), ("airline", "test"), ("retail", "dev")]
)
async def test_gold_actions_of_every_task(domain_name: str, split: str) -> None:
    gold: dict[str, Any] = json.loads(
        shared_file("taubench", domain_name, f"gold_replay_{split}.json").read_text()
    )
    domain = load_domain(domain_name, shared_file("taubench", domain_name), split)
    assert domain.new_episode().db_hash() == gold["initial_db_hash"]
    assert len(domain.tasks) == len(gold["tasks"])
    failures = []
    for expected in gold["tasks"]:
        index = expected["task_index"]
        task = domain.tasks[index]
        state = domain.new_episode(task, index)
        actions = [a for a in task.actions if a.name not in domain.terminate_tools]
        result = await replay(domain, actions, state)
        want = [o["observation"] for o in expected["observations"] if "observation" in o]
        reward = compute_reward(state)
        if (
            result.observations != want
            or result.db_hash != expected["gt_data_hash"]
            or reward.gt_data_hash != expected["gt_data_hash"]
            or (not task.outputs and reward.reward != 1.0)
            or (task.outputs and reward.r_actions is not True)
        ):
            failures.append(index)
    assert failures == []


@pytest.mark.anyio
@pytest.mark.parametrize("domain_name", ["retail", "airline"])
async def test_gold_replay_then_saying_the_outputs_scores_one(domain_name: str) -> None:
    domain = load_domain(domain_name, shared_file("taubench", domain_name))
    with_outputs = [(i, t) for i, t in enumerate(domain.tasks) if t.outputs][:3]
    assert with_outputs
    for index, task in with_outputs:
        state = domain.new_episode(task, index)
        await replay(
            domain, [a for a in task.actions if a.name not in domain.terminate_tools], state
        )
        assert compute_reward(state).reward == 0.0  # nothing said to the user yet
        # tau-bench strips the agent's commas: "1,093.34" matches an output of "1093.34"
        state.respond("Here you go: " + ", ".join(_with_thousands(o) for o in task.outputs))
        reward = compute_reward(state)
        assert reward.reward == 1.0
        assert reward.outputs == dict.fromkeys(task.outputs, True)


def _with_thousands(text: str) -> str:
    try:
        value = float(text)
    except ValueError:
        return text.upper()
    return f"{value:,}" if "." in text else f"{int(value):,}"
