"""Smoke run of the runtime benchmark (N=2, K=2, no latency): every contender completes its runs
and the report holds one row per contender. No timing is asserted; speed lives in benchmarks/."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from benchmarks.bench_runtime import ORDER, run_benchmark
from benchmarks.runtime.fake_server import FINAL_TEXT, TOOL_NAME, FakeServer
from benchmarks.runtime.report import Report, table

N, K = 2, 2
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report() -> Report:
    pytest.importorskip("agents", reason="openai-agents is a benchmark contender")
    pytest.importorskip("pydantic_ai", reason="pydantic-ai is a benchmark contender")
    return run_benchmark(ns=[N], latencies_ms=[0.0], tool_calls=K, log=False)


def test_every_contender_completes_its_runs(report: Report) -> None:
    assert report.failures == []
    by_name = {row.cell.contender: row.cell for row in report.rows}
    assert sorted(by_name) == sorted(ORDER)
    for name, cell in by_name.items():
        assert cell.errors == [], name
        assert cell.runs_ok == N, name
        assert cell.tool_calls == N * K, name
        assert cell.steps == N * (K + 1), name
        assert cell.cpu_s > 0, name


def test_report_rows_compare_with_the_aiohttp_loop(report: Report) -> None:
    baseline = next(r for r in report.rows if r.cell.contender == "raw_aiohttp")
    assert baseline.cpu_ratio == pytest.approx(1.0)
    assert all(r.cpu_ratio is not None and r.cpu_ratio > 0 for r in report.rows)
    text = table(report.rows)
    assert len(text.splitlines()) == 2 + len(ORDER)
    for name in ORDER:
        assert f" {name} " in text
    again = Report.model_validate_json(json.dumps(report.model_dump()))
    assert again == report
    assert report.config["steps_per_run"] == K + 1
    assert report.machine["cores"] >= 1


@pytest.mark.anyio
async def test_fake_server_counts_tool_messages_to_pick_the_turn() -> None:
    with FakeServer(tool_calls=K) as server:
        url = f"{server.base_url}/v1/chat/completions"
        messages: list[dict[str, Any]] = [{"role": "user", "content": "go"}]
        replies = []
        async with aiohttp.ClientSession() as session:
            for turn in range(K + 1):
                async with session.post(url, json={"messages": messages}) as resp:
                    assert resp.status == 200
                    reply = await resp.json()
                replies.append(reply["choices"][0])
                messages.append({"role": "tool", "tool_call_id": f"c{turn}", "content": "x"})
    for turn in range(K):
        call = replies[turn]["message"]["tool_calls"][0]
        assert replies[turn]["finish_reason"] == "tool_calls"
        assert call["function"]["name"] == TOOL_NAME
        assert json.loads(call["function"]["arguments"]) == {"key": f"k{turn}"}
    assert replies[K]["finish_reason"] == "stop"
    assert replies[K]["message"]["content"] == FINAL_TEXT
