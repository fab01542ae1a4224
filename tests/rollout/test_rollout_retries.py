"""In-run retries keep GRPO groups whole: a rollout against the test server with an injected
server failure and a reward function that raises once exports only whole groups for slime and
verl; without retries the export's group policy drops (or flags) the groups left uneven."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agentkit import Agent
from agentkit.models.sglang_tokens import SGLangTokens
from agentkit.models.transport import RetryPolicy
from agentkit.result import RunResult
from agentkit.rollout import Reward, RolloutTask, rollout
from agentkit.testing import Fault, FaultKind, SGLangTestServer, build_test_tokenizer
from agentkit.trajectory.exports import ExportReport, slime_samples, trainable_episodes, verl_rows
from agentkit.trajectory.store import read_store
from tests import rollout_fixture as fx

pytestmark = pytest.mark.anyio

TASKS, N = 4, 4


@pytest.fixture
async def server() -> AsyncIterator[SGLangTestServer]:
    async with SGLangTestServer(policy=fx.policy) as srv:
        yield srv


class FlakyReward:
    """The fixture's reward, raising the first time it scores ``(task, sample)``."""

    def __init__(self, task_id: str, sample_index: int) -> None:
        self.target = (task_id, sample_index)
        self.raised = 0
        self.calls: list[tuple[str, int]] = []

    def __call__(self, task: RolloutTask, result: RunResult[Any]) -> Reward:
        key = (task.id, int(result.trajectory.start.sample_index or 0))
        self.calls.append(key)
        if key == self.target and not self.raised:
            self.raised += 1
            raise RuntimeError("verifier crashed")
        return fx.reward(task, result)


async def _run(server: SGLangTestServer, store: Path, retries: int) -> tuple[Any, FlakyReward]:
    # one attempt per request: an injected fault fails the episode, not just one HTTP try
    model = SGLangTokens(server.base_url, build_test_tokenizer(), retry=RetryPolicy(max_attempts=1))
    agent = Agent(
        model=model, instructions="Answer with the help of lookup.", tools=[fx.lookup], max_turns=4
    )
    server.inject(Fault(FaultKind.HTTP_ERROR, status=503))  # the very first episode's first call
    flaky = FlakyReward("t2", 1)
    try:
        report = await rollout(
            lambda task: agent, fx.tasks(TASKS), n_per_task=N, concurrency=1, reward_fn=flaky,
            store=store, progress=False, max_sample_retries=retries,
        )  # fmt: skip
    finally:
        await agent.aclose()
    return report, flaky


def _sizes(items: list[dict[str, Any]], group: str, index: Any) -> dict[str, int]:
    out: dict[str, set[int]] = {}
    for item in items:
        out.setdefault(group_of(item, group), set()).add(index(item))
    return {g: len(v) for g, v in out.items()}


def group_of(item: dict[str, Any], group: str) -> str:
    return str(item["metadata"]["group_id"] if group == "slime" else item["uid"])


async def test_retries_keep_every_group_whole(server: SGLangTestServer, tmp_path: Path) -> None:
    report, flaky = await _run(server, tmp_path / "run.jsonl", retries=2)
    assert report.failures == []
    assert report.completed == TASKS * N
    assert sorted((f.task_id, f.sample_index) for f in report.retried) == [("t0", 0), ("t2", 1)]
    assert "reward function failed" in next(f.error for f in report.retried if f.task_id == "t2")
    assert flaky.calls.count(("t2", 1)) == 2

    contents = read_store(tmp_path / "run.jsonl")
    assert len(contents.finished) == TASKS * N + 2  # the failed attempts stay in the store
    assert {t.start.metadata.get("group_size") for t in contents.finished} == {N}

    export_report = ExportReport()
    episodes = trainable_episodes(contents.finished, export_report)
    assert export_report.dropped_groups == [] and export_report.flagged_groups == []
    assert sorted(x.reason for x in export_report.excluded) == [
        "infrastructure failure",
        "infrastructure failure",
    ]
    slime = slime_samples(episodes)
    verl = verl_rows(episodes)
    slime_sizes = _sizes(slime, "slime", lambda s: s["metadata"]["sample_index"])
    verl_sizes = _sizes(verl, "verl", lambda r: r["extra_fields"]["sample_index"])
    assert slime_sizes == verl_sizes == {f"t{i}": N for i in range(TASKS)}
    assert all(not s["metadata"]["group_incomplete"] for s in slime)


async def test_without_retries_the_policy_drops_or_flags(
    server: SGLangTestServer, tmp_path: Path
) -> None:
    report, _ = await _run(server, tmp_path / "run.jsonl", retries=0)
    assert report.retried == []
    assert sorted((f.task_id, f.sample_index) for f in report.failures) == [("t0", 0), ("t2", 1)]
    finished = read_store(tmp_path / "run.jsonl").finished

    dropped = ExportReport()
    kept = trainable_episodes(finished, dropped)
    assert sorted(g.group_id for g in dropped.dropped_groups) == ["t0", "t2"]
    assert _sizes(verl_rows(kept), "verl", lambda r: r["extra_fields"]["sample_index"]) == {
        "t1": N,
        "t3": N,
    }

    flagged = ExportReport()
    marked = slime_samples(trainable_episodes(finished, flagged, group_policy="flag"))
    assert sorted((g.group_id, g.kept) for g in flagged.flagged_groups) == [("t0", 3), ("t2", 3)]
    incomplete = {s["metadata"]["group_id"] for s in marked if s["metadata"]["group_incomplete"]}
    assert incomplete == {"t0", "t2"}
