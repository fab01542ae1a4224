"""Rollouts against the SGLang test server in token mode: groups, rewards, failure isolation,
resumption, and exports whose tokens, masks and log-probs equal what the server saw and sent."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agentkit.result import RunResult
from agentkit.rollout import RolloutTask, rollout
from agentkit.testing import SGLangTestServer, load_test_tokenizer
from agentkit.trajectory.exports import (
    ExportReport,
    export,
    sft_records,
    slime_samples,
    trainable_episodes,
    verl_rows,
)
from agentkit.trajectory.parquet import as_float32, compact
from agentkit.trajectory.records import FailureAttribution, Trajectory
from agentkit.trajectory.store import read_store
from tests import rollout_fixture as fx

pytestmark = pytest.mark.anyio


@pytest.fixture
async def server() -> AsyncIterator[SGLangTestServer]:
    async with SGLangTestServer(policy=fx.policy) as srv:
        yield srv
        await fx.close_agents()


def _float32_logprobs(episodes: list[Trajectory]) -> list[Trajectory]:
    """The episodes with log-probs as Parquet keeps them (float32)."""
    out = []
    for traj in episodes:
        copy = traj.model_copy(deep=True)
        copy.calls = [
            c.model_copy(update={"output_logprobs": as_float32(c.output_logprobs or [])})
            for c in copy.calls
        ]
        out.append(copy)
    return out


def _server_calls(
    server: SGLangTestServer,
) -> dict[tuple[str, int], tuple[list[int], list[int], list[float]]]:
    """(episode_id, call index) -> (input_ids sent, output_ids answered, their log-probs)."""
    calls = {}
    for rec in server.generation_requests():
        if rec.path != "/generate" or rec.status != 200:
            continue
        episode_id, index, _ = str(rec.request["rid"]).rsplit("-", 2)
        meta = rec.response["meta_info"]
        calls[(episode_id, int(index))] = (
            list(rec.request["input_ids"]),
            list(rec.response["output_ids"]),
            [float(x[0]) for x in meta["output_token_logprobs"]],
        )
    return calls


def _check_against_server(
    episode_id: str,
    tokens: list[int],
    prompt_len: int,
    mask: list[int],
    logprobs: list[float],
    server_calls: dict[tuple[str, int], tuple[list[int], list[int], list[float]]],
) -> None:
    mine = sorted((k[1], v) for k, v in server_calls.items() if k[0] == episode_id)
    assert mine, f"no server requests for {episode_id}"
    expect_mask = [0] * (len(tokens) - prompt_len)
    expect_lp = [0.0] * (len(tokens) - prompt_len)
    for _, (sent, answered, lps) in mine:
        assert tokens[: len(sent)] == sent
        assert tokens[len(sent) : len(sent) + len(answered)] == answered
        for j, lp in enumerate(lps):
            expect_mask[len(sent) - prompt_len + j] = 1
            expect_lp[len(sent) - prompt_len + j] = lp
    assert prompt_len == len(mine[0][1][0])
    last_sent, last_answer, _ = mine[-1][1]
    assert tokens == last_sent + last_answer
    assert mask == expect_mask
    assert logprobs == expect_lp


async def test_token_rollout_exports_match_the_server(
    server: SGLangTestServer, tmp_path: Path
) -> None:
    store = tmp_path / "run.jsonl"
    out = io.StringIO()
    report = await rollout(
        lambda task: fx.make_agent(task, server.base_url),
        fx.tasks(3),
        n_per_task=3,
        concurrency=4,
        reward_fn=fx.reward,
        store=store,
        progress=out,
    )
    assert report.completed == report.ran == report.planned == 9
    assert "9/9" in out.getvalue()
    contents = read_store(store)
    assert contents.manifest is not None
    assert contents.manifest.mode == "tokens"
    assert len(contents.finished) == 9
    assert not contents.unfinished
    groups = {(t.start.group_id, t.start.sample_index) for t in contents.episodes}
    assert groups == {(f"t{i}", k) for i in range(3) for k in range(3)}
    assert all(t.end is not None and t.end.reward == 1.0 for t in contents.episodes)

    parquet = compact(store)
    # the test server rounds log-probs to 6 decimals; Parquet keeps float32 like the engine
    assert read_store(parquet).episodes == _float32_logprobs(contents.episodes)
    assert contents.episodes != _float32_logprobs(contents.episodes)
    server_calls = _server_calls(server)
    assert len(server_calls) == 18

    tokenizer = load_test_tokenizer()
    for source in (store, parquet):
        if source == parquet:
            server_calls = {k: (a, b, as_float32(c)) for k, (a, b, c) in server_calls.items()}
        episodes = trainable_episodes(read_store(source).episodes)
        samples = slime_samples(episodes)
        assert len(samples) == 9
        for episode in episodes:
            (row,) = episode.rows
            assert row.flags == []
            assert [sp.source.value for sp in row.spans] == [
                "prompt", "template", "model", "tool", "template", "model",
            ]  # fmt: skip
            tool_span = row.spans[3]
            (step,) = episode.trajectory.steps
            assert tool_span.step_index == step.index
            tool_text = tokenizer.decode(
                row.tokens[tool_span.start : tool_span.start + tool_span.length]
            )
            assert step.output in tool_text  # the tool result the model saw
        assert [s["group_index"] for s in samples] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
        for s in samples:
            p = len(s["tokens"]) - s["response_length"]
            _check_against_server(
                s["session_id"],
                s["tokens"],
                p,
                s["loss_mask"],
                s["rollout_log_probs"],
                server_calls,
            )
        for r in verl_rows(episodes):
            _check_against_server(
                r["extra_fields"]["episode_id"],
                r["prompt_ids"] + r["response_ids"],
                len(r["prompt_ids"]),
                r["response_mask"],
                r["response_logprobs"],
                server_calls,
            )
        sft = sft_records(read_store(source).episodes)
        assert len(sft) == 9
        for rec in sft:
            roles = [m["role"] for m in rec["messages"]]
            assert roles == ["system", "user", "assistant", "tool", "assistant"]
            assert rec["messages"][2]["tool_calls"][0]["function"]["name"] == "lookup"
            assert "42" in rec["messages"][-1]["content"]

    pq = pytest.importorskip("pyarrow.parquet")
    hf = tmp_path / "rows.parquet"
    export(read_store(parquet).episodes, hf, "hf")
    table = pq.read_table(hf).to_pylist()
    assert len(table) == 9
    for row in table:
        n = len(row["tokens"]) - row["prompt_len"]
        _check_against_server(
            row["episode_id"], row["tokens"], row["prompt_len"], row["loss_mask"],
            row["rollout_logprobs"], server_calls,
        )  # fmt: skip
        assert len(row["loss_mask"]) == n


async def test_failures_are_isolated_and_excluded(server: SGLangTestServer, tmp_path: Path) -> None:
    def factory(task: RolloutTask) -> Any:
        if task.id == "t1":
            raise RuntimeError("no sandbox for t1")
        return fx.make_agent(task, server.base_url)

    def reward(task: RolloutTask, result: RunResult[Any]) -> float:
        if task.id == "t2":
            raise ValueError("verifier crashed")
        return fx.reward(task, result).value

    store = tmp_path / "run.jsonl"
    report = await rollout(
        factory, fx.tasks(3), n_per_task=2, concurrency=3, reward_fn=reward, store=store,
        progress=False,
    )  # fmt: skip
    assert report.completed == 2
    assert sorted((f.task_id, f.sample_index) for f in report.failures) == [
        ("t1", 0), ("t1", 1), ("t2", 0), ("t2", 1),
    ]  # fmt: skip
    contents = read_store(store)
    infra = [
        t for t in contents.episodes if t.end and t.end.failure is FailureAttribution.INFRASTRUCTURE
    ]
    assert {t.start.task_id for t in infra} == {"t2"}
    assert all(t.end is not None and t.end.reward is None for t in infra)
    export_report = ExportReport()
    kept = trainable_episodes(contents.episodes, export_report)
    assert {e.trajectory.start.task_id for e in kept} == {"t0"}
    assert {x.reason for x in export_report.excluded} == {"infrastructure failure"}

    # a rerun retries the infrastructure failures only
    again = await rollout(
        lambda task: fx.make_agent(task, server.base_url), fx.tasks(3), n_per_task=2,
        concurrency=2, reward_fn=fx.reward, store=store, progress=False,
    )  # fmt: skip
    assert again.skipped == 2
    assert again.ran == again.completed == 4


async def test_rerun_skips_complete_episodes(server: SGLangTestServer, tmp_path: Path) -> None:
    store = tmp_path / "run.jsonl"
    kw: dict[str, Any] = {"reward_fn": fx.reward, "store": store, "progress": False}
    first = await rollout(lambda t: fx.make_agent(t, server.base_url), fx.tasks(2), 2, 2, **kw)
    assert first.ran == 4
    n_requests = len(server.generation_requests())
    second = await rollout(lambda t: fx.make_agent(t, server.base_url), fx.tasks(2), 3, 2, **kw)
    assert second.skipped == 4
    assert second.ran == 2
    assert len(server.generation_requests()) == n_requests + 4
    contents = read_store(store)
    assert sorted((t.start.task_id, t.start.sample_index) for t in contents.episodes) == [
        ("t0", 0), ("t0", 1), ("t0", 2), ("t1", 0), ("t1", 1), ("t1", 2),
    ]  # fmt: skip
    assert contents.manifest is not None
    third = await rollout(lambda t: fx.make_agent(t, server.base_url), fx.tasks(2), 3, 2, **kw)
    assert third.ran == 0
    assert third.skipped == 6


async def test_chat_mode_rollout_feeds_sft_not_rl(tmp_path: Path) -> None:
    from agentkit import Agent
    from agentkit.models import SGLangChat

    async with SGLangTestServer(policy=fx.policy) as server:
        agent: Agent[Any, Any] = Agent(
            model=SGLangChat(server.base_url),
            instructions="Answer with the help of lookup.",
            tools=[fx.lookup],
            max_turns=4,
        )
        store = tmp_path / "chat.jsonl"
        report = await rollout(
            lambda task: agent, fx.tasks(2), 2, 2, reward_fn=fx.reward, store=store,
            progress=False,
        )  # fmt: skip
        await agent.aclose()
    assert report.completed == 4
    contents = read_store(store)
    assert contents.manifest is not None
    assert contents.manifest.mode == "chat"
    assert all(not t.start.token_exact for t in contents.episodes)
    assert all(c.input_ids is None for t in contents.episodes for c in t.calls)
    export_report = ExportReport()
    assert trainable_episodes(contents.episodes, export_report) == []
    assert {x.reason for x in export_report.excluded} == {"not token-exact (chat mode)"}
    sft = sft_records(contents.episodes)
    assert len(sft) == 4
    assert all(r["reward"] == 1.0 for r in sft)
    assert [m["role"] for m in sft[0]["messages"]] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
    ]


async def test_async_reward_with_components(server: SGLangTestServer, tmp_path: Path) -> None:
    from agentkit.rollout import Reward

    async def reward(task: RolloutTask, result: RunResult[Any]) -> Reward | None:
        if task.id == "t1":
            return None  # unscored
        return Reward(value=0.25, components={"format": 0.25, "judge": "ok"})

    store = tmp_path / "run.jsonl"
    report = await rollout(
        lambda t: fx.make_agent(t, server.base_url), fx.tasks(2), 1, 2, reward_fn=reward,
        store=store, progress=False,
    )  # fmt: skip
    assert report.completed == 2
    ends = {t.start.task_id: t.end for t in read_store(store).episodes}
    assert ends["t0"] is not None
    assert ends["t0"].reward == 0.25
    assert ends["t0"].reward_components == {"format": 0.25, "judge": "ok"}
    assert ends["t1"] is not None
    assert ends["t1"].reward is None
    export_report = ExportReport()
    kept = trainable_episodes(read_store(store).episodes, export_report)
    assert [e.trajectory.start.task_id for e in kept] == ["t0"]
    assert [x.reason for x in export_report.excluded] == ["no reward"]
