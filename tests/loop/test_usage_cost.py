"""Usage and cost per run and per rollout: tokens from the server's own counts, priced by table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from agentkit import Agent
from agentkit.models.sglang_tokens import SGLangTokens
from agentkit.pricing import ModelPrice, PriceTable, priced
from agentkit.rollout import RolloutTask, rollout
from agentkit.testing import SGLangTestServer, build_test_tokenizer
from agentkit.trajectory.recorder import MemoryRecorder
from agentkit.trajectory.records import EpisodeEnd, Usage
from agentkit.trajectory.store import read_store
from tests import rollout_fixture as fx
from tests.shared import REPO_ROOT

pytestmark = pytest.mark.anyio

PRICE = ModelPrice(input_per_mtok=2.0, cached_input_per_mtok=0.5, output_per_mtok=8.0)


def test_price_arithmetic() -> None:
    usage = Usage(prompt_tokens=1000, cached_tokens=400, completion_tokens=200)
    assert PRICE.cost(usage) == pytest.approx((600 * 2.0 + 400 * 0.5 + 200 * 8.0) / 1e6)
    no_cache_price = ModelPrice(input_per_mtok=2.0, output_per_mtok=8.0)
    assert no_cache_price.cost(usage) == pytest.approx((1000 * 2.0 + 200 * 8.0) / 1e6)
    table = PriceTable(models={"glm": PRICE})
    assert table.cost(usage, "other") is None
    assert priced(usage, table, "glm").cost == pytest.approx(PRICE.cost(usage))
    assert priced(usage, None, "glm").cost is None
    with pytest.raises(ValueError):
        ModelPrice(input_per_mtok=-1.0, output_per_mtok=1.0)


def priced_agent(url: str, prices: Any) -> Agent[Any, Any]:
    return Agent(
        model=SGLangTokens(url, build_test_tokenizer(), model="glm-test"),
        tools=[fx.lookup],
        max_turns=4,
        prices=prices,
    )


async def test_run_usage_and_cost_come_from_the_call_records() -> None:
    async with SGLangTestServer(policy=fx.policy) as server:
        recorder = MemoryRecorder()
        agent = priced_agent(server.base_url, {"glm-test": PRICE})
        async with agent:
            result = await agent.run("question 1?", recorder=recorder)
            unpriced = priced_agent(server.base_url, {"another-model": PRICE})
            async with unpriced:
                other = await unpriced.run("question 2?")
        with pytest.raises(TypeError, match="prices"):
            priced_agent(server.base_url, 3.0)
    assert result.ok, result.error
    calls = result.trajectory.calls
    usage = result.usage
    assert usage.requests == len(calls) == 2 and usage.tool_calls == 1
    assert usage.prompt_tokens == sum(c.prompt_tokens or 0 for c in calls) > 0
    assert usage.completion_tokens == sum(c.completion_tokens or 0 for c in calls) > 0
    assert usage.cached_tokens == sum(c.cached_tokens or 0 for c in calls) > 0  # prefix cache hit
    assert usage.cost is not None and usage.cost == pytest.approx(PRICE.cost(usage))
    end = recorder.items[-1]
    assert isinstance(end, EpisodeEnd) and end.usage.cost == pytest.approx(usage.cost)
    assert other.ok and other.usage.cost is None and other.usage.requests == 2


async def test_rollout_report_totals(tmp_path: Path) -> None:
    store = tmp_path / "run.jsonl"
    async with SGLangTestServer(policy=fx.policy) as server:
        agent = priced_agent(server.base_url, PriceTable(models={"glm-test": PRICE}))
        async with agent:
            report = await rollout(
                lambda task: agent, fx.tasks(3), n_per_task=2, store=store, progress=False
            )
    assert report.completed == 6
    ends = [t.end for t in read_store(store).finished if t.end is not None]
    assert len(ends) == 6
    total = report.usage
    assert total.requests == sum(e.usage.requests for e in ends) == 12
    assert total.tool_calls == 6
    assert total.prompt_tokens == sum(e.usage.prompt_tokens for e in ends)
    assert total.completion_tokens == sum(e.usage.completion_tokens for e in ends)
    assert total.cached_tokens == sum(e.usage.cached_tokens for e in ends)
    assert total.cost == pytest.approx(sum(e.usage.cost or 0.0 for e in ends))
    assert total.cost is not None and total.cost > 0


def make_cli_agent(task: RolloutTask | None = None) -> Agent[Any, Any]:
    """The factory the ``agentkit rollout`` subprocess loads (server URL from the environment)."""
    return priced_agent(os.environ["ROLLOUT_SERVER_URL"], {"glm-test": PRICE})


async def test_cli_summary_has_usage_and_cost_and_the_log_has_no_carriage_returns(
    tmp_path: Path,
) -> None:
    store = tmp_path / "cli.jsonl"
    async with SGLangTestServer(policy=fx.policy) as server:
        env = dict(os.environ)
        env.update(
            ROLLOUT_SERVER_URL=server.base_url,
            PYTHONPATH=os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]),
        )
        command = [
            sys.executable, "-m", "agentkit.trajectory.cli", "rollout",
            "--agent", "tests.loop.test_usage_cost:make_cli_agent",
            "--tasks", "tests.rollout_fixture:default_tasks",
            "--store", str(store), "--n", "2", "--fsync", "never",
        ]  # fmt: skip
        done = await anyio.run_process(
            command, env=env, cwd=REPO_ROOT, check=False, stderr=subprocess.PIPE
        )
    assert done.returncode == 0, done.stderr.decode()
    summary = json.loads(done.stdout.decode().strip().splitlines()[-1])
    ends = [t.end for t in read_store(store).finished if t.end is not None]
    assert summary["completed"] == 8 and summary["model_calls"] == 16
    assert summary["tool_calls"] == 8
    assert summary["prompt_tokens"] == sum(e.usage.prompt_tokens for e in ends)
    assert summary["cached_tokens"] == sum(e.usage.cached_tokens for e in ends)
    assert summary["cost"] == pytest.approx(sum(e.usage.cost or 0.0 for e in ends))
    log = done.stderr.decode()
    assert "\r" not in log and "rollout 8/8 (100%)" in log  # stderr is a pipe, not a TTY
