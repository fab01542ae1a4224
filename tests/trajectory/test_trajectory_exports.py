"""Exports: slime Sample dicts, verl rows, SFT messages, HF Parquet; infra failures excluded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentkit.trajectory.exports import (
    ExportReport,
    export,
    sft_records,
    slime_samples,
    trainable_episodes,
    verl_rows,
)
from agentkit.trajectory.records import EpisodeStatus, FailureAttribution
from agentkit.trajectory.rows import build_rows
from tests.trajectory_fakes import token_episode

# slime/utils/types.py Sample fields (plus rollout_id of newer slime versions)
SLIME_FIELDS = {
    "group_index", "index", "rollout_id", "prompt", "tokens", "multimodal_inputs",
    "multimodal_train_inputs", "response", "response_length", "label", "reward", "loss_mask",
    "weight_versions", "rollout_log_probs", "rollout_routed_experts", "remove_sample",
    "teacher_log_probs", "status", "metadata", "generate_function_path", "train_metadata",
    "session_id", "non_generation_time", "spec_info", "prefix_cache_info",
}  # fmt: skip


def _batch() -> list:  # type: ignore[type-arg]
    return [
        token_episode("a0", task_id="A", sample_index=0, seed=1, reward=1.0),
        token_episode("b0", task_id="B", sample_index=0, seed=2, reward=0.0),
        token_episode("a1", task_id="A", sample_index=1, seed=3, reward=0.5),
        token_episode(
            "infra", task_id="B", sample_index=1, seed=4, reward=None,
            status=EpisodeStatus.FAILED, failure=FailureAttribution.INFRASTRUCTURE,
        ),
        token_episode(
            "policy", task_id="B", sample_index=2, seed=5, reward=None,
            status=EpisodeStatus.OUTPUT_INVALID, failure=FailureAttribution.POLICY,
        ),
        token_episode("open", task_id="A", sample_index=2, seed=6, finished=False),
    ]  # fmt: skip


def test_infra_failures_and_unfinished_are_excluded_policy_failures_score_zero() -> None:
    report = ExportReport()
    kept = trainable_episodes(_batch(), report, group_policy="flag")
    assert {e.trajectory.episode_id for e in kept} == {"a0", "a1", "b0", "policy"}
    assert {x.episode_id: x.reason for x in report.excluded} == {
        "infra": "infrastructure failure",
        "open": "unfinished",
    }
    rewards = {e.trajectory.episode_id: e.reward for e in kept}
    assert rewards["policy"] == 0.0
    # groups are contiguous, in order of first appearance, then by sample index
    assert [e.trajectory.episode_id for e in kept] == ["a0", "a1", "b0", "policy"]


def test_slime_samples_have_sample_fields_and_exact_tokens() -> None:
    batch = _batch()
    samples = slime_samples(trainable_episodes(batch, group_policy="flag"))
    assert len(samples) == 4
    assert all(set(s) == SLIME_FIELDS for s in samples)
    assert [s["group_index"] for s in samples] == [0, 0, 1, 1]
    assert [s["index"] for s in samples] == [0, 1, 2, 3]
    by_id = {t.episode_id: t for t in batch}
    for sample in samples:
        traj = by_id[sample["session_id"]]
        (row,) = build_rows(traj)
        assert sample["tokens"] == row.tokens
        assert sample["response_length"] == len(sample["tokens"]) - row.prompt_len
        assert len(sample["loss_mask"]) == sample["response_length"]
        assert len(sample["rollout_log_probs"]) == sample["response_length"]
        last = traj.calls[-1]
        assert sample["tokens"] == (last.input_ids or []) + (last.output_ids or [])
        assert sample["label"] == "42"
        assert sample["weight_versions"] == ["1"] * len(traj.calls)
        assert sample["prompt"][1]["role"] == "user"
    assert samples[0]["status"] == "completed"
    assert samples[3]["status"] == "failed"
    assert samples[3]["reward"] == 0.0
    assert samples[0]["prefix_cache_info"]["total_prompt_tokens"] == sum(
        c.prompt_tokens or 0 for c in by_id["a0"].calls
    )


def test_verl_rows_fields_and_group_uid() -> None:
    batch = _batch()
    rows = verl_rows(trainable_episodes(batch, group_policy="flag"))
    assert [r["uid"] for r in rows] == ["A", "A", "B", "B"]
    first = rows[0]
    (row,) = build_rows(batch[0])
    assert first["prompt_ids"] + first["response_ids"] == row.tokens
    assert first["prompt_ids"] == batch[0].calls[0].input_ids
    assert first["response_mask"] == row.loss_mask
    assert first["response_logprobs"] == row.rollout_logprobs
    assert first["reward_score"] == 1.0
    # 1 user + 3 assistant + 2 tool messages
    assert first["num_turns"] == 6


def test_sft_view_has_reasoning_tool_calls_and_tool_results() -> None:
    batch = _batch()
    records = sft_records(batch)
    assert {r["episode_id"] for r in records} == {"a0", "b0", "a1", "policy"}
    rec = next(r for r in records if r["episode_id"] == "a0")
    roles = [m["role"] for m in rec["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "tool", "assistant"]
    first = rec["messages"][2]
    assert first["reasoning_content"] == "thinking 0"
    assert first["tool_calls"][0]["function"] == {"name": "lookup", "arguments": '{"q": 0}'}
    assert rec["messages"][3] == {
        "role": "tool", "tool_call_id": "call_0", "name": "lookup", "content": "result 0",
    }  # fmt: skip
    assert rec["messages"][-1]["content"] == "done"
    assert rec["chat_template_kwargs"] == {"enable_thinking": True}
    only_good = sft_records(batch, min_reward=0.75)
    assert [r["episode_id"] for r in only_good] == ["a0"]


def test_episode_with_broken_record_is_excluded_with_reason() -> None:
    traj = token_episode("bad", seed=7)
    lps = traj.calls[0].output_logprobs
    assert lps is not None
    traj.calls[0] = traj.calls[0].model_copy(update={"output_logprobs": [*lps, -1.0]})
    report = ExportReport()
    assert (
        trainable_episodes([traj, token_episode("ok", seed=8)], report, group_policy="flag")[
            0
        ].trajectory.episode_id
        == "ok"
    )
    assert report.excluded[0].episode_id == "bad"
    assert "invariant broken" in report.excluded[0].reason


@pytest.mark.parametrize("fmt", ["slime", "verl", "sft", "hf"])
def test_export_writes_files(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"out.{'parquet' if fmt == 'hf' else 'jsonl'}"
    report = export(_batch(), out, fmt, group_policy="flag")  # type: ignore[arg-type]
    assert report.rows == 4
    assert len(report.excluded) == 2
    if fmt == "hf":
        pq = pytest.importorskip("pyarrow.parquet")
        table = pq.read_table(out)
        assert table.num_rows == 4
        assert str(table.schema.field("loss_mask").type) == "list<element: int8>"
        assert str(table.schema.field("tokens").type) == "list<element: int32>"
        assert table.column("tokens").to_pylist()[0] == build_rows(_batch()[0])[0].tokens
    else:
        lines = [json.loads(x) for x in out.read_text().splitlines()]
        assert len(lines) == 4


def test_verl_num_turns_counts_a_round_of_tool_results_once() -> None:
    """verl's ToolAgentLoop: prompt + model calls + rounds of tool replies (not each reply)."""
    traj = token_episode("two-tools", turns=3)
    first = traj.steps[0]
    # the first call asked for two tools: a second result in the same round
    traj.steps.insert(1, first.model_copy(update={"index": first.index + 1}))
    for k, step in enumerate(traj.steps):
        step.index = k
    assert len(traj.steps) == 3 and len(traj.calls) == 3
    (row,) = verl_rows(trainable_episodes([traj], group_policy="flag"))
    assert row["num_turns"] == 1 + 3 + 2


def test_slime_status_and_raw_reward_follow_slime() -> None:
    """max_turns is ``completed`` (slime's builder); an unscored policy failure has a float
    raw_reward (slime's train data prefers it over ``reward``)."""
    traj = token_episode("mt", reward=None, status=EpisodeStatus.MAX_TURNS)
    (sample,) = slime_samples(trainable_episodes([traj], group_policy="flag"))
    assert sample["status"] == "completed"
    assert sample["reward"] == 0.0 and sample["metadata"]["raw_reward"] == 0.0
    assert sample["metadata"]["recorded_reward"] is None
