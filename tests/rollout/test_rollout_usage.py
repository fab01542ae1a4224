"""A rollout's usage totals are what its episodes recorded, whatever runs the episodes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentkit import Agent
from agentkit.rollout import RolloutTask, rollout
from agentkit.rollout_episode import RewardFn, run_episode
from agentkit.testing import SGLangTestServer
from agentkit.trajectory.records import Usage
from agentkit.trajectory.store import JsonlStore, read_store
from tests import rollout_fixture as fx

pytestmark = pytest.mark.anyio


def _recorded(path: Path, episode_ids: list[str] | None = None) -> tuple[Usage, int]:
    """The summed usage of the episode ends in a store (of ``episode_ids`` only, if given)."""
    total, ends = Usage(), 0
    for traj in read_store(path).episodes:
        if traj.end is None or (episode_ids is not None and traj.episode_id not in episode_ids):
            continue
        total.add(traj.end.usage)
        ends += 1
    return total, ends


async def _twice(
    agent: Agent[Any, Any], task: RolloutTask, k: int, store: JsonlStore, reward: RewardFn | None
) -> tuple[str, str | None]:
    """A custom episode function: two episodes per sample, the first one a warm-up."""
    await run_episode(agent, task, k + 100, store, reward)
    return await run_episode(agent, task, k, store, reward)


async def test_usage_sums_the_recorded_episode_ends(tmp_path: Path) -> None:
    async with SGLangTestServer(policy=fx.policy) as server:
        path = tmp_path / "store.jsonl"
        report = await rollout(
            lambda t: fx.make_agent(t, server.base_url), fx.tasks(3), 2, 2,
            reward_fn=fx.reward, store=path, progress=False,
        )  # fmt: skip
        await fx.close_agents()
    usage, ends = _recorded(path)
    assert report.completed == 6
    assert (report.usage_episodes, ends) == (6, 6)
    assert report.usage == usage
    assert report.usage.requests == 12  # a call and an answer per episode
    assert report.usage.tool_calls == 6
    assert report.usage.prompt_tokens > 0 and report.usage.completion_tokens > 0


async def test_a_custom_episode_function_is_counted_and_a_passed_store_only_for_this_run(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.jsonl"
    async with SGLangTestServer(policy=fx.policy) as server:
        make = lambda t: fx.make_agent(t, server.base_url)  # noqa: E731
        with JsonlStore(path) as store:  # one store object, two runs
            await rollout(make, fx.tasks(1), 1, 1, store=store, progress=False)
            earlier = read_store(path).episodes[0].episode_id
            assert store.episodes_ended == 1
            report = await rollout(
                make, [RolloutTask(id="u", prompt="question u?")], 1, 1, store=store,
                progress=False, episode_fn=_twice,
            )  # fmt: skip
        await fx.close_agents()
    everything, ends = _recorded(path)
    assert ends == 3  # the earlier run's episode, then the warm-up and the sample
    before, _ = _recorded(path, [earlier])
    assert report.usage_episodes == 2  # both of this run's episodes, the warm-up included
    assert report.usage.requests == everything.requests - before.requests == 4
    assert report.usage.prompt_tokens == everything.prompt_tokens - before.prompt_tokens
