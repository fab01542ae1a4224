"""Real gpt-4o airline trajectories (tau-bench's historical run), replayed through agentkit's
airline domain, get the rewards tau-bench computes for them on the current data."""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest

from agentkit.envs import Domain, load_domain
from agentkit.envs.reward import compute_reward
from agentkit.envs.tasks import RESPOND_ACTION
from tests.shared import shared_file

# For task 0 trial 3 the shared file's agent hash disagrees with tau-bench's own tools: running
# tau-bench's airline tool classes on that action list gives this hash, and so does agentkit.
# (Its reward, 0, agrees either way.)
HASH_CHECKED_WITH_TAU_BENCH_TOOLS = {
    (0, 3): "9c301c00b9ef076451c593d15f96e5c96c5a71655dac1d76aa326bd9d8bee574"
}


@functools.cache
def _replay_trial(trial: int) -> tuple[list[tuple[int, int]], list[float]]:
    """Replay every task's run of one trial (cached: the slow test reuses trial 0)."""
    data_dir = shared_file("taubench", "airline")
    replays: dict[str, Any] = json.loads((data_dir / "trajectory_replay_gpt-4o.json").read_text())
    domain: Domain = load_domain("airline", data_dir)
    mismatches = []
    rewards = []
    for run in replays["trajectories"]:
        if run["trial"] != trial:
            continue
        task_index = run["task_id"]
        state = domain.new_episode(domain.tasks[task_index], task_index)
        for action in run["agent_actions"]:
            if state.terminated:
                break
            if action["name"] == RESPOND_ACTION:
                state.respond(action["kwargs"]["content"])
            else:
                state.step(action["name"], action["kwargs"])
        reward = compute_reward(state)
        final = reward.reward if run["terminated"] else 0.0
        rewards.append(final)
        key = (task_index, run["trial"])
        want_hash = HASH_CHECKED_WITH_TAU_BENCH_TOOLS.get(key, run["agent_final_db_hash"])
        if (
            reward.data_hash != want_hash
            or reward.r_actions != run["r_actions"]
            or final != run["replayed_reward"]
            or (run["outputs_found"] and reward.outputs != run["outputs_found"])
        ):
            mismatches.append(key)
    return mismatches, rewards


def test_first_trial_of_each_airline_task_gets_tau_bench_reward() -> None:
    mismatches, rewards = _replay_trial(0)
    assert mismatches == []
    assert len(rewards) == 50


@pytest.mark.slow
def test_all_200_gpt4o_airline_runs_give_pass1_of_042() -> None:
    mismatches: list[tuple[int, int]] = []
    rewards: list[float] = []
    for trial in range(4):
        bad, got = _replay_trial(trial)
        mismatches += bad
        rewards += got
    assert mismatches == []
    assert len(rewards) == 200
    assert sum(rewards) / len(rewards) == pytest.approx(0.42)  # tau-bench's published gpt-4o figure
