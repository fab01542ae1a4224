"""Partial rollouts: an episode cut short goes on from its last complete model call.

The SGLang test server serves a three-lookup task in token mode; the first run is cut when the
server refuses a call (a non-retryable error, as an abort or a dying server is) right after a
weight update. The resumed run starts from the recorded token context of the last complete
call; the joined episode gives one training row whose loss mask is 1 on exactly the sampled
tokens of all its calls, with every call's weight version kept and the row flagged off-policy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentkit import Agent, EpisodeStatus, tool
from agentkit.models import SGLangChat
from agentkit.models.sglang_tokens import SGLangTokens
from agentkit.partial_rollout import resume_episode
from agentkit.result import RunResult
from agentkit.rollout_episode import RolloutTask
from agentkit.testing import SGLangTestServer, build_test_tokenizer
from agentkit.testing.policy import PolicyRequest
from agentkit.trajectory.exports import export, slime_samples, trainable_episodes, verl_rows
from agentkit.trajectory.partial import NotResumable, merge_partial_rollouts, resume_point
from agentkit.trajectory.records import TokenSource
from agentkit.trajectory.rows import build_rows
from agentkit.trajectory.store import JsonlStore, read_store

pytestmark = pytest.mark.anyio

SERVER: list[SGLangTestServer] = []


@tool
def lookup(key: str) -> str:
    """Look a key up.

    Args:
        key: The key.
    """
    if key == "k1" and SERVER:
        # the trainer updates the weights and the server refuses the next call: the run is cut
        SERVER[0].weight_version = "v2"
        SERVER[0].fail_next(1, status=400)
    return f"value of {key}"


def policy(request: PolicyRequest) -> str:
    done = sum(1 for m in request.messages if m.get("role") == "tool")
    if done < 3:
        return (
            f"<think>next</think>\n<tool_call>lookup\n<arg_key>key</arg_key>\n"
            f"<arg_value>k{done}</arg_value>\n</tool_call>"
        )
    return "<think>all</think>\nLooked up k0, k1 and k2."


def reward(task: RolloutTask, result: RunResult[Any]) -> float:
    return 1.0 if "k2" in str(result.output) else 0.0


def _crash(path: Path) -> None:
    """The store as a killed process leaves it: no refused call, no end record."""
    lines = path.read_text().splitlines()
    kept = [line for line in lines if '"failed":true' not in line and "episode_end" not in line]
    path.write_text("\n".join(kept) + "\n")


@pytest.mark.parametrize("crashed", [False, True])
async def test_a_cut_episode_resumes_from_its_last_complete_call(
    tmp_path: Path, crashed: bool
) -> None:
    path = tmp_path / "store.jsonl"
    async with SGLangTestServer(policy=policy, weight_version="v1") as server:
        SERVER[:] = [server]
        model = SGLangTokens(server.base_url, build_test_tokenizer())
        try:
            async with Agent(model=model, tools=[lookup]) as agent:
                with JsonlStore(path) as store:
                    first = await agent.run("look up k0, k1, k2", recorder=store, task_id="t")
                assert first.status is EpisodeStatus.MODEL_ERROR
                if crashed:
                    _crash(path)
                refused = first.trajectory.calls[2]
                original = read_store(path).episodes[0]
                assert original.finished is not crashed
                point = resume_point(original)
                with JsonlStore(path) as store:
                    resumed = await resume_episode(agent, original, store, reward_fn=reward)
        finally:
            SERVER.clear()
    assert resumed.ok, resumed.error
    # the cut: two complete calls (v1), the third refused
    assert [c.failed for c in original.calls] == [False, False, True][: len(original.calls)]
    assert point.kept_calls == 2
    kept = original.calls[1]
    assert point.token_context["ids"] == (kept.input_ids or []) + (kept.output_ids or [])

    contents = read_store(path)
    assert contents.bad_lines == []
    continuation = contents.episodes[1]
    assert continuation.start.metadata["resumed_from"] == original.episode_id
    first_new = continuation.calls[0]
    # the resumed call appends to exactly the recorded context, with the same tool results
    assert (first_new.input_ids or [])[: len(point.token_context["ids"])] == point.token_context[
        "ids"
    ]
    assert [s.ids for s in first_new.appended] == [s.ids for s in refused.appended]

    (merged,) = merge_partial_rollouts(contents.episodes)
    assert merged.episode_id == original.episode_id
    assert merged.end is not None and merged.end.reward == 1.0
    (row,) = build_rows(merged)
    last = merged.calls[-1]
    assert row.tokens == (last.input_ids or []) + (last.output_ids or [])
    assert [c.index for c in merged.calls] == [0, 1, 2, 3]
    # mask 1 on every sampled token and only there
    sampled = sum(len(c.output_ids or []) for c in merged.calls)
    assert sum(row.loss_mask) == sampled
    model_spans = [s for s in row.spans if s.source is TokenSource.MODEL]
    assert [s.length for s in model_spans] == [len(c.output_ids or []) for c in merged.calls]
    # the weight update mid-episode is kept: off-policy row
    assert row.weight_versions == ["v1", "v1", "v2", "v2"]
    assert row.off_policy and "off-policy: several weight versions" in row.flags
    episodes = trainable_episodes([merged])
    (sample,) = slime_samples(episodes)
    assert sample["weight_versions"] == ["v1", "v1", "v2", "v2"]
    assert "off-policy: several weight versions" in sample["metadata"]["flags"]
    (verl,) = verl_rows(episodes)
    assert sum(verl["response_mask"]) == sampled
    # the export joins them by itself: one sample for the pair, the merged one
    report = export(contents.episodes, tmp_path / "slime.jsonl", "slime")
    (line,) = (tmp_path / "slime.jsonl").read_text().splitlines()
    assert json.loads(line)["session_id"] == original.episode_id
    assert report.exported_episodes == 1


async def test_without_a_complete_call_there_is_nothing_to_resume(tmp_path: Path) -> None:
    path = tmp_path / "store.jsonl"
    async with SGLangTestServer(policy=policy) as server:
        server.fail_next(1, status=400)
        model = SGLangTokens(server.base_url, build_test_tokenizer())
        async with JsonlStore(path) as store, Agent(model=model, tools=[lookup]) as agent:
            result = await agent.run("look up", recorder=store)
    assert result.status is EpisodeStatus.MODEL_ERROR
    with pytest.raises(NotResumable, match="no complete call"):
        resume_point(read_store(path).episodes[0])


async def test_chat_mode_episodes_do_not_resume_token_exactly(tmp_path: Path) -> None:
    path = tmp_path / "store.jsonl"
    async with (
        SGLangTestServer(policy=policy) as server,
        JsonlStore(path) as store,
        Agent(model=SGLangChat(server.base_url), tools=[lookup], max_turns=1) as agent,
    ):
        await agent.run("look up", recorder=store)
    with pytest.raises(NotResumable, match="token-mode"):
        resume_point(read_store(path).episodes[0])
