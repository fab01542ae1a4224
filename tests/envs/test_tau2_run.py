"""tau2 episodes end to end: ``agentkit tau run --benchmark tau2`` against the SGLang test server
with a scripted agent and the gold user, a model-played user with device tools, and
``agentkit tau replay --benchmark tau2``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from typer.testing import CliRunner

from agentkit.agent import Agent
from agentkit.envs.cli import app
from agentkit.envs.domains.tau2.telecom import load
from agentkit.envs.scripted import tool_call_text
from agentkit.envs.tau2.domain import Tau2Domain
from agentkit.envs.tau2.episode import Tau2Ending, run_tau2_episode
from agentkit.envs.tau2.scripted import Tau2GoldPolicy
from agentkit.envs.tau2.users import STOP, Tau2ModelUser
from agentkit.models import SGLangChat
from agentkit.testing import SGLangTestServer
from agentkit.testing.policy import PolicyRequest
from tests.shared import shared_file

runner = CliRunner()
# dual control: the user's phone is off the network and the line is suspended for an unpaid
# bill; the agent must send a payment request and resume the line, the user must pay
OVERDUE = "[service_issue]airplane_mode_on|overdue_bill_suspension[PERSONA:None]"


def _telecom() -> tuple[Tau2Domain, Path]:
    data_dir = shared_file("tau2", "telecom")
    return load(data_dir), data_dir


def _run_cli(data_dir: Path, index: int, url: str, out: Path) -> tuple[str, dict[str, Any]]:
    args = ["run", "--benchmark", "tau2", "--domain", "telecom", "--data-dir", str(data_dir)]
    args += ["--split", "all", "--tasks", str(index), "--base-url", url, "--user", "gold"]
    args += ["--out", str(out), "--concurrency", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.stdout, json.loads((out / "results.json").read_text())


@pytest.mark.parametrize("broken", [False, True])
def test_tau_run_tau2_telecom_against_the_test_server(tmp_path: Path, broken: bool) -> None:
    domain, data_dir = _telecom()
    index = next(i for i, t in enumerate(domain.tasks) if t.id == OVERDUE)
    server = SGLangTestServer(policy=Tau2GoldPolicy(domain, broken=broken)).start()
    try:
        stdout, results = _run_cli(data_dir, index, server.base_url, tmp_path)
    finally:
        server.stop()
    (episode,) = results["results"]
    assert episode["ending"] == "user_stop"
    calls = [(c["requestor"], c["name"]) for c in episode["calls"]]
    reward = episode["reward"]
    if not broken:
        assert reward["reward"] == 1.0
        assert reward["missed"] == []
        assert calls == [
            ("user", "toggle_airplane_mode"),
            ("assistant", "send_payment_request"),
            ("user", "make_payment"),
            ("assistant", "resume_line"),
            ("user", "reboot_device"),
        ]
        assert "pass^1: 1.0000" in stdout
    else:
        assert reward["reward"] == 0.0
        assert reward["missed"] == ["ENV_ASSERTION"]
        assert all(requestor == "user" for requestor, _ in calls)
        assert "missed ENV_ASSERTION" in stdout
        assert "pass^1: 0.0000" in stdout
    lines = (tmp_path / "trajectories.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    steps = [r for r in records if r.get("kind") == "env_step"]
    # the user's words are user steps (masked in training rows); the user's device calls never
    # appear as the agent's tool steps
    assert any(s["step_type"] == "user" for s in steps)
    agent_tools = {s["call"]["name"] for s in steps if s["step_type"] == "tool" and s["call"]}
    assert agent_tools <= {"send_payment_request", "resume_line"}


class PhoneUserPolicy:
    """A 'model' playing the customer: it reads the status bar with its device tool, reports it,
    then, once the agent has answered, stops."""

    def __call__(self, request: PolicyRequest) -> str:
        roles = [m.get("role") for m in request.messages]
        if "tool" not in roles:
            return "<think>look</think>\n" + tool_call_text("check_status_bar", {})
        if roles.count("user") < 2:
            return "<think>say</think>\nMy phone shows no signal. Can you help?"
        return f"<think>done</think>\nThanks. {STOP}"


def test_a_model_user_calls_its_device_tools_on_the_same_episode() -> None:
    domain, _ = _telecom()
    index = next(i for i, t in enumerate(domain.tasks) if t.id == OVERDUE)

    async def go() -> Any:
        agent_server = SGLangTestServer(policy=["<think>x</think>\nPlease restart your phone."])
        user_server = SGLangTestServer(policy=PhoneUserPolicy())
        async with agent_server, user_server:
            agent_model = SGLangChat([agent_server.base_url], model="default")
            user_model = SGLangChat([user_server.base_url], model="default")
            agent: Agent[Any, Any] = domain.agent(agent_model)
            try:
                return await run_tau2_episode(agent, domain, index, Tau2ModelUser(user_model))
            finally:
                await agent.aclose()
                await user_model.aclose()

    result = anyio.run(go)
    assert result.ending is Tau2Ending.USER_STOP
    assert [(c.requestor, c.name) for c in result.calls] == [("user", "check_status_bar")]
    assert result.calls[0].observation.startswith("Status Bar: ✈️ Airplane Mode")
    assert result.reward is not None and result.reward.reward == 0.0
    assert result.reward.missed == ["ENV_ASSERTION"]


def test_tau_replay_tau2_with_requestors(tmp_path: Path) -> None:
    _, data_dir = _telecom()
    gold = json.loads((data_dir / "gold_replay.json").read_text())
    want = next(r for r in gold["replays"] if r["task_id"] == OVERDUE)
    actions = tmp_path / "actions.json"
    actions.write_text(
        json.dumps(
            [
                {"name": s["name"], "arguments": s["arguments"], "requestor": s["requestor"]}
                for s in want["steps"]
            ]
            + [{"name": "toggle_wifi", "arguments": {}, "requestor": "assistant"}]
        )
    )
    args = ["replay", "--benchmark", "tau2", "--domain", "telecom", "--data-dir", str(data_dir)]
    result = runner.invoke(app, [*args, "--task-id", OVERDUE, "--actions", str(actions)])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["post_init_user_db_hash"] == want["post_init_user_db_hash"]
    assert [s["observation"] for s in printed["steps"][:-1]] == [
        s["observation"] for s in want["steps"]
    ]
    # a user tool asked for by the agent does not exist on the agent's side
    assert printed["steps"][-1]["observation"] == "Error: Tool 'toggle_wifi' not found."
    assert printed["steps"][-1]["error"] is True
    assert printed["final_db_hash"] == want["final_db_hash"]
    assert printed["components"]["ENV_ASSERTION"]["all_met"] is True


def test_tau_replay_tau2_needs_a_task_id() -> None:
    _, data_dir = _telecom()
    args = ["replay", "--benchmark", "tau2", "--domain", "telecom", "--data-dir", str(data_dir)]
    result = runner.invoke(app, args)
    assert result.exit_code != 0
    assert "--task-id" in result.output


def test_token_mode_rows_never_train_on_the_users_words(tmp_path: Path) -> None:
    from agentkit.envs.tau2.users import GoldScriptedUser
    from agentkit.models.sglang_tokens import SGLangTokens
    from agentkit.testing import build_test_tokenizer
    from agentkit.trajectory.records import TokenSource
    from agentkit.trajectory.rows import build_rows
    from agentkit.trajectory.store import JsonlStore, read_store

    domain, _ = _telecom()
    index = next(i for i, t in enumerate(domain.tasks) if t.id == OVERDUE)
    store_path = tmp_path / "trajectories.jsonl"

    async def go() -> Any:
        async with SGLangTestServer(policy=Tau2GoldPolicy(domain)) as server:
            model = SGLangTokens(server.base_url, build_test_tokenizer())
            agent: Agent[Any, Any] = domain.agent(model)
            try:
                with JsonlStore(store_path) as store:
                    return await run_tau2_episode(
                        agent, domain, index, GoldScriptedUser(), recorder=store
                    )
            finally:
                await agent.aclose()

    result = anyio.run(go)
    assert result.reward is not None and result.reward.reward == 1.0
    (trajectory,) = read_store(store_path).finished
    rows = build_rows(trajectory)
    user_positions = [
        (row, pos)
        for row in rows
        for pos in range(row.prompt_len, len(row.tokens))
        if row.source_at(pos) is TokenSource.USER
    ]
    assert user_positions, "the user's later messages are in the rows as context"
    assert all(row.loss_mask[pos - row.prompt_len] == 0 for row, pos in user_positions)
    assert any(m == 1 for row in rows for m in row.loss_mask)


def test_scripted_dual_control_episodes_score_like_the_gold_replays() -> None:
    """A sample of the shared telecom tasks played as whole episodes (scripted agent on the test
    server, gold user on the phone) ends user_stop with tau2's gold reward."""
    from agentkit.envs.tau2.users import GoldScriptedUser

    domain, data_dir = _telecom()
    gold = json.loads((data_dir / "gold_replay.json").read_text())
    sample = gold["replays"][::8]
    index = {task.id: i for i, task in enumerate(domain.tasks)}

    async def go() -> list[Any]:
        async with SGLangTestServer(policy=Tau2GoldPolicy(domain)) as server:
            model = SGLangChat([server.base_url], model="default")
            agent: Agent[Any, Any] = domain.agent(model)
            try:
                return [
                    await run_tau2_episode(agent, domain, index[r["task_id"]], GoldScriptedUser())
                    for r in sample
                ]
            finally:
                await agent.aclose()

    results = anyio.run(go)
    for want, got in zip(sample, results, strict=True):
        assert got.ending is Tau2Ending.USER_STOP, got.error
        assert [(c.requestor, c.name) for c in got.calls] == [
            (s["requestor"], s["name"]) for s in want["steps"]
        ]
        assert [c.observation for c in got.calls] == [s["observation"] for s in want["steps"]]
        assert got.reward is not None
        assert got.reward.reward == want["gold_reward_without_nl"], got.reward.missed
