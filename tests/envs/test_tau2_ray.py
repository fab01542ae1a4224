"""tau2 tasks rolled out on a local Ray cluster (two worker actors): the dual-control episode
function and the domain's agent run on the workers, and the sharded store holds whole groups
scored by tau2's own reward, as the single-process rollout does."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import anyio
import pytest

from agentkit.envs.tau2.rollout import tau2_episode
from agentkit.envs.tau2.scripted import Tau2GoldPolicy
from agentkit.rollout import rollout
from agentkit.testing import SGLangTestServer
from agentkit.trajectory.exports import ExportReport, slime_samples, trainable_episodes
from agentkit.trajectory.store import read_store
from tests.envs.test_tau2_rollout import TASK_IDS, URL_VAR, _domain, cli_agent, telecom_tasks
from tests.ray_fixture import local_ray_options

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("ray") is None, reason="ray is not installed (agentkit[ray])"
    ),
]


def test_tau2_rollout_on_ray_scores_whole_groups(tmp_path: Path) -> None:
    tasks = telecom_tasks()
    store = tmp_path / "ray-store"

    async def go() -> Any:
        async with SGLangTestServer(policy=Tau2GoldPolicy(_domain(tasks))) as server:
            return await rollout(
                cli_agent, tasks, 2, 2, store=store, episode_fn=tau2_episode, progress=False,
                executor="ray", ray_options=local_ray_options({URL_VAR: server.base_url}),
            )  # fmt: skip

    report = anyio.run(go)
    assert (report.planned, report.completed, report.failures) == (4, 4, [])
    assert report.workers == 2 and report.usage_episodes == 4
    contents = read_store(store)
    assert contents.bad_lines == []
    finished = contents.finished
    pairs = sorted((t.start.task_id, t.start.sample_index) for t in finished)
    assert pairs == [(f"telecom/{task_id}", k) for task_id in sorted(TASK_IDS) for k in (0, 1)]
    for traj in finished:
        assert traj.end is not None and traj.end.reward == 1.0
        components = traj.end.reward_components
        assert components["missed"] == [] and components["env_assertion"] == 1.0
        assert any(step.step_type == "user" for step in traj.steps)
    assert report.usage.requests == sum(t.end.usage.requests for t in finished if t.end)
    # the exports read the shards as one store; each group is whole
    export_report = ExportReport()
    samples = slime_samples(trainable_episodes(contents.episodes, export_report))
    assert export_report.dropped_groups == []
    sizes: dict[str, int] = {}
    for sample in samples:
        group = sample["metadata"]["group_id"]
        sizes[group] = sizes.get(group, 0) + 1
    assert sizes == {f"telecom/{task_id}": 2 for task_id in TASK_IDS}
