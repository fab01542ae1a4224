"""tau2 tasks as RL rollouts: ``rollout(..., episode_fn=tau2_episode)`` and ``agentkit rollout
--episode agentkit.envs.tau2.rollout:tau2_episode``, against the SGLang test server in token mode
(a scripted agent playing the gold assistant actions, the gold user on the phone): whole GRPO
groups, tau2's reward and components in the store and in the slime and verl exports, the user's
words never trained on; a broken agent scores 0 with the missed components named; a failing
user simulator is an infrastructure failure, left out of exports and rerun on resume."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import anyio
import pytest
from typer.testing import CliRunner

from agentkit.agent import Agent
from agentkit.envs.tau2.domain import Tau2Domain
from agentkit.envs.tau2.rollout import (
    Tau2AgentFactory,
    Tau2ModelSpec,
    Tau2TaskSpec,
    load_spec_domain,
    tau2_episode,
    tau2_tasks,
)
from agentkit.envs.tau2.scripted import Tau2GoldPolicy
from agentkit.models.sglang_tokens import SGLangTokens
from agentkit.rollout import RolloutReport, RolloutTask, rollout
from agentkit.testing import SGLangTestServer, build_test_tokenizer
from agentkit.testing.faults import Fault, FaultKind
from agentkit.trajectory.cli import cli_app
from agentkit.trajectory.exports import export
from agentkit.trajectory.records import FailureAttribution, Trajectory
from agentkit.trajectory.rows import build_rows
from agentkit.trajectory.store import read_store
from tests.shared import shared_file

# two dual-control telecom tasks: a suspended line with the phone in airplane mode, and mobile
# data broken on the phone (VPN, data off) with the allowance used up
TASK_IDS = [
    "[service_issue]airplane_mode_on|overdue_bill_suspension[PERSONA:None]",
    "[mobile_data_issue]bad_vpn|data_mode_off|data_usage_exceeded|user_abroad_roaming_disabled_off"
    "[PERSONA:None]",
]
COMPONENTS = ("db", "env_assertion", "action", "communicate", "nl")
URL_VAR = "AGENTKIT_TAU2_ROLLOUT_URL"


def telecom_tasks() -> list[RolloutTask]:
    return tau2_tasks("telecom", shared_file("tau2", "telecom"), task_ids=TASK_IDS)


def cli_agent(task: RolloutTask) -> Agent[Any, Any]:
    """``--agent`` for the command-line test: the domain's agent on the test server."""
    factory = Tau2AgentFactory(lambda: SGLangTokens(os.environ[URL_VAR], build_test_tokenizer()))
    return factory(task)


def _domain(tasks: list[RolloutTask]) -> Tau2Domain:
    return load_spec_domain(Tau2TaskSpec.of(tasks[0]))


def _rollout(
    store: Path, tasks: list[RolloutTask], *, broken: bool = False, n: int = 2
) -> RolloutReport:
    async def go() -> RolloutReport:
        policy = Tau2GoldPolicy(_domain(tasks), broken=broken)
        async with SGLangTestServer(policy=policy) as server:
            factory = Tau2AgentFactory(
                lambda: SGLangTokens(server.base_url, build_test_tokenizer())
            )
            return await rollout(
                factory,
                tasks,
                n_per_task=n,
                concurrency=4,
                store=store,
                episode_fn=tau2_episode,
                progress=False,
                close_agents=True,
            )

    return anyio.run(go)


def _finished(store: Path) -> list[Trajectory]:
    return sorted(
        read_store(store).finished,
        key=lambda t: (t.start.task_id or "", t.start.sample_index or 0),
    )


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _assert_user_tokens_masked(sample: dict[str, Any]) -> None:
    """In a slime sample, no token of a user step is trained on; the model's are."""
    prompt_len = len(sample["tokens"]) - sample["response_length"]
    mask = sample["loss_mask"]
    sources = {span["source"] for span in sample["metadata"]["spans"]}
    assert "model" in sources
    for span in sample["metadata"]["spans"]:
        positions = range(span["start"], span["start"] + span["length"])
        trained = [mask[p - prompt_len] for p in positions if p >= prompt_len]
        if span["source"] == "user":
            assert not any(trained), span
        if span["source"] == "model":
            assert all(trained), span


def test_gold_rollout_whole_groups_with_rewards_components_and_exports(tmp_path: Path) -> None:
    store = tmp_path / "rollout.jsonl"
    tasks = telecom_tasks()
    report = _rollout(store, tasks)
    assert (report.planned, report.completed, report.failures) == (4, 4, [])

    episodes = _finished(store)
    assert [(t.start.task_id, t.start.group_id, t.start.sample_index) for t in episodes] == [
        (f"telecom/{task_id}", f"telecom/{task_id}", k)
        for task_id in sorted(TASK_IDS)
        for k in (0, 1)
    ]
    for traj in episodes:
        end = traj.end
        assert end is not None and end.reward == 1.0 and end.failure is None
        components = end.reward_components
        assert components["missed"] == [] and components["ending"] == "user_stop"
        assert components["reward_basis"] == ["ENV_ASSERTION"]
        assert components["env_assertion"] == 1.0 and components["action"] == 1.0
        assert set(COMPONENTS) <= set(components)
        assert traj.start.metadata["group_size"] == 2
        # the opening line is the prompt; the user's later words are user steps
        assert traj.start.prompt_messages[-1]["content"].startswith("Task id: ")
        assert any(step.step_type == "user" for step in traj.steps)
        # the phone's tools ran as the user's calls, never as the agent's tool steps
        calls = end.output["calls"]
        assert {c["requestor"] for c in calls} == {"user", "assistant"}
        agent_tools = {s.call.name for s in traj.steps if s.step_type == "tool" and s.call}
        assert agent_tools == {c["name"] for c in calls if c["requestor"] == "assistant"}
        # each sample had its own fresh databases: both samples end in the same state
    for first, second in zip(episodes[::2], episodes[1::2], strict=True):
        assert first.end is not None and second.end is not None
        detail = first.end.reward_components["detail"], second.end.reward_components["detail"]
        assert detail[0]["user_db_hash"] == detail[1]["user_db_hash"]

    slime = export(read_store(store).episodes, tmp_path / "slime.jsonl", "slime")
    verl = export(read_store(store).episodes, tmp_path / "verl.jsonl", "verl")
    assert slime.exported_episodes == verl.exported_episodes == 4
    samples = _read_jsonl(tmp_path / "slime.jsonl")
    assert samples and len({s["group_index"] for s in samples}) == 2
    for sample in samples:
        assert sample["reward"] == 1.0
        assert sample["metadata"]["reward_components"]["env_assertion"] == 1.0
        assert sample["metadata"]["group_id"] in {f"telecom/{t}" for t in TASK_IDS}
        _assert_user_tokens_masked(sample)
    assert any(
        span["source"] == "user" and span["start"] >= len(s["tokens"]) - s["response_length"]
        for s in samples
        for span in s["metadata"]["spans"]
    ), "the user's later messages are in the rows' responses, masked"
    rows = _read_jsonl(tmp_path / "verl.jsonl")
    assert rows and {r["uid"] for r in rows} == {f"telecom/{t}" for t in TASK_IDS}
    for row in rows:
        assert row["reward_score"] == 1.0
        assert row["extra_fields"]["reward_components"]["missed"] == []
        assert len(row["response_mask"]) == len(row["response_ids"])


def test_a_broken_agent_scores_zero_and_names_the_missed_components(tmp_path: Path) -> None:
    store = tmp_path / "rollout.jsonl"
    report = _rollout(store, telecom_tasks(), broken=True)
    assert (report.completed, report.failures) == (4, [])
    episodes = _finished(store)
    assert len(episodes) == 4
    for traj in episodes:
        end = traj.end
        assert end is not None and end.reward == 0.0
        assert end.failure is FailureAttribution.POLICY
        components = end.reward_components
        assert components["missed"] == ["ENV_ASSERTION"]
        assert components["env_assertion"] == 0.0 and components["action"] == 0.0
        assert all(c["requestor"] == "user" for c in end.output["calls"])
        rows = build_rows(traj)
        assert rows and any(m == 1 for row in rows for m in row.loss_mask)
    # policy failures are training data: they export with reward 0 and their components
    export(read_store(store).episodes, tmp_path / "slime.jsonl", "slime")
    samples = _read_jsonl(tmp_path / "slime.jsonl")
    assert len({s["rollout_id"] for s in samples}) == 4
    assert all(s["reward"] == 0.0 for s in samples)
    assert all(s["metadata"]["reward_components"]["missed"] == ["ENV_ASSERTION"] for s in samples)


def test_a_failing_user_simulator_is_infrastructure_excluded_and_rerun(tmp_path: Path) -> None:
    store = tmp_path / "rollout.jsonl"

    async def with_a_broken_user() -> RolloutReport:
        async with SGLangTestServer(policy=["unused"]) as user_server:
            user_server.inject(Fault(FaultKind.HTTP_ERROR, times=None, status=400))
            user = Tau2ModelSpec(base_urls=[user_server.base_url])
            tasks = tau2_tasks(
                "telecom", shared_file("tau2", "telecom"), task_ids=TASK_IDS, user=user
            )
            async with SGLangTestServer(policy=Tau2GoldPolicy(_domain(tasks))) as server:
                factory = Tau2AgentFactory(
                    lambda: SGLangTokens(server.base_url, build_test_tokenizer())
                )
                return await rollout(
                    factory,
                    tasks,
                    n_per_task=2,
                    store=store,
                    episode_fn=tau2_episode,
                    progress=False,
                    close_agents=True,
                )

    report = anyio.run(with_a_broken_user)
    assert report.completed == 0 and len(report.failures) == 4
    assert all("user simulator" in f.error for f in report.failures)
    failed = read_store(store).finished
    assert failed and all(
        t.end is not None and t.end.failure is FailureAttribution.INFRASTRUCTURE for t in failed
    )
    excluded = export(read_store(store).episodes, tmp_path / "none.jsonl", "slime")
    assert excluded.rows == 0 and excluded.exported_episodes == 0

    # resumed with the gold user: every pair runs again, and only the new episodes export
    report = _rollout(store, telecom_tasks())
    assert (report.skipped, report.completed) == (0, 4)
    again = export(read_store(store).episodes, tmp_path / "slime.jsonl", "slime")
    assert again.exported_episodes == 4
    assert all(s["reward"] == 1.0 for s in _read_jsonl(tmp_path / "slime.jsonl"))


def test_agentkit_rollout_command_runs_tau2_episodes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, out = tmp_path / "rollout.jsonl", tmp_path / "verl.jsonl"
    runner = CliRunner()
    server = SGLangTestServer(policy=Tau2GoldPolicy(_domain(telecom_tasks()))).start()
    try:
        monkeypatch.setenv(URL_VAR, server.base_url)
        args = ["rollout", "--agent", "tests.envs.test_tau2_rollout:cli_agent"]
        args += ["--tasks", "tests.envs.test_tau2_rollout:telecom_tasks"]
        args += ["--episode", "agentkit.envs.tau2.rollout:tau2_episode"]
        args += ["--store", str(store), "--n", "2", "--no-progress"]
        result = runner.invoke(cli_app, args)
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout.strip().splitlines()[-1])
        assert (summary["planned"], summary["completed"], summary["failed"]) == (4, 4, 0)
        # rerunning the command on the same store runs nothing
        result = runner.invoke(cli_app, args)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout.strip().splitlines()[-1])["skipped"] == 4
    finally:
        server.stop()
    result = runner.invoke(cli_app, ["export", str(store), str(out), "--format", "verl"])
    assert result.exit_code == 0, result.output
    rows = _read_jsonl(out)
    assert {r["uid"] for r in rows} == {f"telecom/{t}" for t in TASK_IDS}
    assert all(r["reward_score"] == 1.0 for r in rows)
    assert all(r["extra_fields"]["reward_components"]["missed"] == [] for r in rows)


def test_tau2_episodes_refuse_a_reward_function_and_foreign_tasks(tmp_path: Path) -> None:
    (task,) = tau2_tasks("telecom", shared_file("tau2", "telecom"), task_ids=TASK_IDS[:1])

    async def go() -> list[tuple[str, str | None]]:
        from agentkit.trajectory.store import JsonlStore

        factory = Tau2AgentFactory(Tau2ModelSpec(base_urls=["http://127.0.0.1:9"]))
        agent = factory(task)
        try:
            with JsonlStore(tmp_path / "s.jsonl") as store:
                foreign = RolloutTask(id="plain", prompt="hello")
                return [
                    await tau2_episode(agent, task, 0, store, lambda t, r: 1.0),
                    await tau2_episode(agent, foreign, 0, store, None),
                ]
        finally:
            await agent.aclose()

    (scored, foreign) = anyio.run(go)
    assert scored[0] == "" and scored[1] is not None and "--reward" in scored[1]
    assert foreign[0] == "" and foreign[1] is not None and "not a tau2 task" in foreign[1]
    assert read_store(tmp_path / "s.jsonl").finished == []


def test_tau2_tasks_and_agent_factory_travel_as_plain_data() -> None:
    """What Ray ships to its workers: tasks and the factory pickle (the factory without its
    agents); a task's spec is JSON, as a tasks file holds it."""
    tasks = tau2_tasks("telecom", shared_file("tau2", "telecom"), split="small")
    assert tasks and len({t.id for t in tasks}) == len(tasks)
    again = pickle.loads(pickle.dumps(tasks))
    assert [Tau2TaskSpec.of(t) for t in again] == [Tau2TaskSpec.of(t) for t in tasks]
    line = tasks[0].model_dump_json()
    assert Tau2TaskSpec.of(RolloutTask.model_validate_json(line)) == Tau2TaskSpec.of(tasks[0])
    factory = Tau2AgentFactory(Tau2ModelSpec(base_urls=["http://127.0.0.1:9"]))
    factory._agents[("x", "y")] = None  # type: ignore[assignment]
    assert pickle.loads(pickle.dumps(factory))._agents == {}
