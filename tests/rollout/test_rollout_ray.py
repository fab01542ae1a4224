"""Rollouts on a local Ray cluster (a driver and two worker actors), one worker SIGKILLed in the
middle of an episode: nothing recorded is lost, the killed pairs rerun on a replacement, and the
sharded store holds the same pairs and the same tokens as a single-process rollout."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
from pathlib import Path
from typing import Any

import anyio
import pytest

from agentkit.rollout import rollout
from agentkit.testing import SGLangTestServer
from agentkit.trajectory.exports import ExportReport, slime_samples, trainable_episodes
from agentkit.trajectory.parquet import compact
from agentkit.trajectory.records import FailureAttribution, Trajectory, Usage
from agentkit.trajectory.store import read_store
from tests import ray_fixture
from tests import rollout_fixture as fx
from tests.shared import REPO_ROOT

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("ray") is None, reason="ray is not installed (agentkit[ray])"
    ),
]

N_TASKS, N_SAMPLES = 4, 3


def _by_pair(episodes: list[Trajectory]) -> dict[tuple[str, int], Trajectory]:
    """Each pair's scored episode (an attempt that failed and was rerun is left out)."""
    out: dict[tuple[str, int], Trajectory] = {}
    for traj in episodes:
        if traj.end is not None and traj.end.failure is FailureAttribution.INFRASTRUCTURE:
            continue
        assert traj.start.task_id is not None and traj.start.sample_index is not None
        out[(traj.start.task_id, traj.start.sample_index)] = traj
    return out


def _scored_per_pair(episodes: list[Trajectory]) -> dict[tuple[str, int], int]:
    """How many scored (not infrastructure-failed) finished episodes each pair has: one each,
    or a GRPO group is uneven."""
    counts: dict[tuple[str, int], int] = {}
    for traj in episodes:
        if traj.end is None or traj.end.failure is FailureAttribution.INFRASTRUCTURE:
            continue
        assert traj.start.task_id is not None and traj.start.sample_index is not None
        pair = (traj.start.task_id, traj.start.sample_index)
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def _tokens(traj: Trajectory) -> list[tuple[Any, ...]]:
    return [(c.input_ids, c.output_ids, c.finish_reason) for c in traj.calls]


async def test_killed_worker_loses_nothing_and_matches_single_process(tmp_path: Path) -> None:
    stuck_dir = tmp_path / "stuck"
    stuck_dir.mkdir()
    release = tmp_path / "release"
    async with SGLangTestServer(policy=fx.policy) as server:
        reference = tmp_path / "single.jsonl"
        await rollout(
            lambda t: fx.make_agent(t, server.base_url), fx.tasks(N_TASKS), N_SAMPLES, 3,
            reward_fn=fx.reward, store=reference, progress=False,
        )  # fmt: skip
        await fx.close_agents()
        env = {
            "RAY_TEST_SERVER_URL": server.base_url,
            "RAY_TEST_BLOCK": "question 2?",
            "RAY_TEST_RELEASE": str(release),
            "RAY_TEST_STUCK_DIR": str(stuck_dir),
            "RAY_TEST_REWARD_MARK": str(tmp_path / "reward-raised"),
        }
        store = tmp_path / "ray-store"
        killed: list[int] = []

        async def kill_the_stuck_worker() -> None:
            with anyio.fail_after(120):
                while not any(stuck_dir.iterdir()):  # noqa: ASYNC110 (another process writes it)
                    await anyio.sleep(0.1)
            pid = int(next(stuck_dir.iterdir()).name)
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            release.touch()  # the reruns may finish now

        report: Any = None

        async def run() -> None:
            nonlocal report
            report = await rollout(
                ray_fixture.make_agent, fx.tasks(N_TASKS), N_SAMPLES, 2,
                ray_fixture.reward_failing_once, store, progress=False, executor="ray",
                ray_options=ray_fixture.local_ray_options(env),
            )  # fmt: skip

        async with anyio.create_task_group() as tg:
            tg.start_soon(kill_the_stuck_worker)
            tg.start_soon(run)

    assert killed
    assert report.completed == N_TASKS * N_SAMPLES
    assert report.failures == []
    # the reward function that raised once: that sample was run again within the rollout
    assert [(f.task_id, "verifier crashed" in f.error) for f in report.retried] == [("t1", True)]
    assert report.worker_restarts >= 1
    assert len(report.shards) >= 3  # two workers and at least one replacement
    # usage comes from the workers that closed cleanly (the killed one's tally died with it)
    assert 0 < report.usage_episodes <= report.ran + len(report.retried)
    assert report.usage.requests >= 2 * report.usage_episodes

    contents = read_store(store)
    assert contents.bad_lines == []
    finished = _by_pair(contents.finished)
    single = _by_pair(read_store(reference).finished)
    assert set(_scored_per_pair(contents.finished).values()) == {1}
    assert (
        set(finished)
        == set(single)
        == {(f"t{i}", k) for i in range(N_TASKS) for k in range(N_SAMPLES)}
    )
    # the killed worker's episode(s) stay in its shard, unfinished, with what they recorded
    assert any(t.start.task_id == "t2" and t.calls for t in contents.unfinished)
    for pair, traj in finished.items():
        other = single[pair]
        assert traj.end is not None and other.end is not None
        assert traj.end.status == other.end.status
        assert traj.end.reward == other.end.reward == 1.0
        assert _tokens(traj) == _tokens(other)

    # exports and compaction read the shards as one store; the groups are whole
    report_x = ExportReport()
    samples = slime_samples(trainable_episodes(contents.episodes, report_x))
    assert report_x.dropped_groups == []
    sizes: dict[str, int] = {}
    for sample in samples:
        sizes[sample["metadata"]["group_id"]] = sizes.get(sample["metadata"]["group_id"], 0) + 1
    assert sizes == {f"t{i}": N_SAMPLES for i in range(N_TASKS)}
    parquet = compact(store, tmp_path / "ray.parquet")
    assert set(_by_pair(read_store(parquet).finished)) == set(finished)


async def test_a_worker_killed_after_recording_an_end_is_not_run_twice(tmp_path: Path) -> None:
    """The worker running ("t1", 0) dies after the episode's end is in its shard and before its
    reply reaches the driver: the driver reads the dead shard and counts that episode, so the
    pair has exactly one scored episode and every group its N_SAMPLES."""
    mark = tmp_path / "died"
    store = tmp_path / "ray-store"
    async with SGLangTestServer(policy=fx.policy) as server:
        env = {"RAY_TEST_SERVER_URL": server.base_url, "RAY_TEST_DIE_MARK": str(mark)}
        report: Any = await rollout(
            ray_fixture.make_agent, fx.tasks(N_TASKS), N_SAMPLES, 2, fx.reward, store,
            progress=False, executor="ray", episode_fn=ray_fixture.run_then_die_once,
            ray_options=ray_fixture.local_ray_options(env),
        )  # fmt: skip
    assert mark.exists()  # the worker did die after recording
    assert report.worker_restarts >= 1
    assert report.completed == N_TASKS * N_SAMPLES and report.failures == []
    contents = read_store(store)
    counts = _scored_per_pair(contents.finished)
    assert counts == {(f"t{i}", k): 1 for i in range(N_TASKS) for k in range(N_SAMPLES)}
    report_x = ExportReport()
    samples = slime_samples(trainable_episodes(contents.episodes, report_x))
    assert report_x.dropped_groups == [] and len(samples) == N_TASKS * N_SAMPLES


def test_rollout_command_runs_on_ray_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from agentkit.trajectory.cli import cli_app

    with SGLangTestServer(policy=fx.policy) as server:
        env = {
            "RAY_TEST_SERVER_URL": server.base_url,
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
        }
        for key, value in env.items():  # the local Ray instance and its workers inherit them
            monkeypatch.setenv(key, value)
        store = tmp_path / "cli-store"
        args = [
            "rollout", "--agent", "tests.ray_fixture:make_agent",
            "--tasks", "tests.rollout_fixture:default_tasks",
            "--reward", "tests.rollout_fixture:reward", "--store", str(store),
            "--n", "2", "--ray", "--workers", "2", "--concurrency", "2", "--no-progress",
        ]  # fmt: skip
        first = CliRunner().invoke(cli_app, args)
        assert first.exit_code == 0, first.output
        summary = json.loads(first.output.strip().splitlines()[-1])
        assert (summary["completed"], summary["workers"]) == (8, 2)
        # the workers' usage, gathered when they close: what the shards' episode ends hold
        recorded = Usage()
        for traj in read_store(store).finished:
            assert traj.end is not None
            recorded.add(traj.end.usage)
        assert summary["usage_episodes"] == 8
        assert (summary["model_calls"], summary["tool_calls"]) == (16, 8)
        assert summary["prompt_tokens"] == recorded.prompt_tokens > 0
        assert summary["completion_tokens"] == recorded.completion_tokens > 0
        again = CliRunner().invoke(cli_app, args)
        assert again.exit_code == 0, again.output
        assert json.loads(again.output.strip().splitlines()[-1])["skipped"] == 8
