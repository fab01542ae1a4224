"""Rewards as a first-class signal: per-turn and per-tool rewards next to the episode reward.

Rollouts run against the SGLang test server in token mode; the reward function's turn and tool
rewards are recorded on the episode end and reach verl's ``turn_scores`` / ``tool_rewards``
and slime's metadata. A reward naming a turn or call the episode does not have is the reward
function's bug (the episode is left out). An async reward function that takes the task's deps
runs the test the agent wrote in the agent's own (real Docker) sandbox.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentkit import Agent, RunContext, tool
from agentkit.models.sglang_tokens import SGLangTokens
from agentkit.result import RunResult
from agentkit.rollout import rollout
from agentkit.rollout_episode import RolloutTask
from agentkit.rollout_rewards import Reward
from agentkit.testing import SGLangTestServer, build_test_tokenizer
from agentkit.trajectory.exports import slime_samples, trainable_episodes, verl_rows
from agentkit.trajectory.records import FailureAttribution
from agentkit.trajectory.store import read_store
from agentkit_sandboxes.docker_sandbox import DockerSandbox
from tests.sandbox_support import TEST_CONFIG

pytestmark = pytest.mark.anyio


@tool
def note(text: str) -> str:
    """Write a note.

    Args:
        text: The note.
    """
    return f"noted {text}"


def _calls(*texts: str) -> str:
    return "<think>notes</think>\n" + "\n".join(
        f"<tool_call>note\n<arg_key>text</arg_key>\n<arg_value>{t}</arg_value>\n</tool_call>"
        for t in texts
    )


SCRIPT = [_calls("a", "b"), _calls("c"), "<think>done</think>\nAll noted."]


def _call_ids(result: RunResult[Any]) -> list[str]:
    return [s.call.id for s in result.trajectory.steps if s.call is not None]


def per_turn(task: RolloutTask, result: RunResult[Any]) -> Reward:
    ids = _call_ids(result)
    return Reward(
        value=1.0,
        components={"notes": len(ids)},
        turn_rewards={0: 0.25, 1: 0.5},
        tool_rewards={ids[0]: 0.1, ids[2]: 0.3},
    )


async def _rollout(tmp_path: Path, reward_fn: Any, samples: int = 2) -> Path:
    store = tmp_path / "store.jsonl"
    async with SGLangTestServer(policy=lambda request: SCRIPT[request.call_index % 3]) as server:
        model = SGLangTokens(server.base_url, build_test_tokenizer())
        agent = Agent(model=model, tools=[note])
        report = await rollout(
            lambda task: agent,
            [RolloutTask(id="t1", prompt="take notes")],
            n_per_task=samples,
            concurrency=1,
            reward_fn=reward_fn,
            store=store,
            progress=False,
            max_sample_retries=0,
        )
        await agent.aclose()
    assert report.ran == samples
    return store


async def test_turn_and_tool_rewards_reach_the_store_and_the_exports(tmp_path: Path) -> None:
    store = await _rollout(tmp_path, per_turn)
    episodes = read_store(store).finished
    assert len(episodes) == 2
    for traj in episodes:
        end = traj.end
        assert end is not None and end.reward == 1.0
        assert end.turn_rewards == {0: 0.25, 1: 0.5}
        ids = [s.call.id for s in traj.steps if s.call is not None]
        assert end.tool_rewards == {ids[0]: 0.1, ids[2]: 0.3}
        assert end.reward_components == {"notes": 3}
    kept = trainable_episodes(episodes)
    rows = verl_rows(kept)
    assert [r["extra_fields"]["turn_scores"] for r in rows] == [[0.25, 0.5]] * 2
    assert [r["extra_fields"]["tool_rewards"] for r in rows] == [[0.1, 0.3]] * 2
    samples = slime_samples(kept)
    for sample in samples:
        assert sample["metadata"]["turn_rewards"] == {0: 0.25, 1: 0.5}
        assert sorted(sample["metadata"]["tool_rewards"].values()) == [0.1, 0.3]


async def test_a_reward_for_a_turn_the_episode_lacks_is_the_reward_functions_bug(
    tmp_path: Path,
) -> None:
    def wrong(task: RolloutTask, result: RunResult[Any]) -> Reward:
        return Reward(value=1.0, turn_rewards={7: 1.0})

    store = await _rollout(tmp_path, wrong, samples=1)
    (traj,) = read_store(store).finished
    assert traj.end is not None
    assert traj.end.failure is FailureAttribution.INFRASTRUCTURE
    assert "turns the episode does not have: [7]" in (traj.end.error or "")
    assert trainable_episodes([traj]) == []


class Workspace:
    def __init__(self, box: DockerSandbox) -> None:
        self.box = box


@tool
async def write_test(ctx: RunContext[Workspace], source: str) -> str:
    """Write the test file.

    Args:
        source: The test's Python source.
    """
    await ctx.deps.box.write_file("test_it.py", source)
    return "written"


async def test_an_async_reward_runs_the_agents_test_in_its_sandbox(
    tmp_path: Path, engine: Any
) -> None:
    box = await DockerSandbox.create(engine, TEST_CONFIG)
    try:
        source = "assert 2 + 2 == 4\nprint('ok')"
        script = [
            "<think>write</think>\n<tool_call>write_test\n<arg_key>source</arg_key>\n"
            f"<arg_value>{source}</arg_value>\n</tool_call>",
            "<think>done</think>\nWritten.",
        ]

        async def run_tests(task: RolloutTask, result: RunResult[Any], deps: Workspace) -> Reward:
            ran = await deps.box.exec(["python3", "test_it.py"])
            return Reward(
                value=1.0 if ran.exit_code == 0 else 0.0,
                components={"exit_code": ran.exit_code, "stdout": ran.stdout.strip()},
            )

        store = tmp_path / "store.jsonl"
        async with SGLangTestServer(policy=script) as server:
            model = SGLangTokens(server.base_url, build_test_tokenizer())
            async with Agent(model=model, tools=[write_test]) as agent:
                await rollout(
                    lambda task: agent,
                    [RolloutTask(id="t", prompt="write a test", deps=Workspace(box))],
                    reward_fn=run_tests,
                    store=store,
                    progress=False,
                )
    finally:
        await box.destroy()
    (traj,) = read_store(store).finished
    assert traj.end is not None
    assert traj.end.reward_components == {"exit_code": 0, "stdout": "ok"}
    assert traj.end.reward == 1.0
