"""Smoke run of the runtime benchmark (N=2, K=2, no latency): every contender completes its runs
and the report holds one row per contender. No timing is asserted; speed lives in benchmarks/."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from benchmarks.bench_runtime import ORDER, quick_plan, run_benchmark
from benchmarks.runtime.fake_server import FINAL_TEXT, TOOL_NAME, FakeServer
from benchmarks.runtime.measure import Cell, median_cell
from benchmarks.runtime.report import Report, rows_from_cells, table

N, K = 2, 2


@pytest.fixture(scope="module")
def report() -> Report:
    pytest.importorskip("agents", reason="openai-agents is a benchmark contender")
    pytest.importorskip("pydantic_ai", reason="pydantic-ai is a benchmark contender")
    return run_benchmark(ns=[N], latencies_ms=[0.0], tool_calls=K, log=False)


@pytest.mark.slow
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


@pytest.mark.slow
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


def _cell(contender: str, cpu_s: float, wall_s: float, n: int = 10) -> Cell:
    steps = n * (K + 1)
    return Cell(
        contender=contender,
        latency_ms=50.0,
        n=n,
        tool_calls_per_run=K,
        runs_ok=n,
        tool_calls=n * K,
        steps=steps,
        cpu_s=cpu_s,
        wall_s=wall_s,
        gc_s=0.0,
        cpu_ms_per_step=cpu_s * 1000 / steps,
        gc_share=0.0,
        ideal_wall_s=(K + 1) * 0.05,
    )


def test_ratios_are_taken_against_the_aiohttp_loop_of_the_same_cell() -> None:
    rows = rows_from_cells(
        [_cell("raw_aiohttp", 0.3, 0.2), _cell("agentkit", 0.6, 0.3), _cell("x", 1.0, 1.0, n=7)]
    )
    by_name = {r.cell.contender: r for r in rows}
    assert by_name["agentkit"].cpu_ratio == pytest.approx(2.0)
    assert by_name["agentkit"].wall_ratio == pytest.approx(1.5)
    assert by_name["agentkit"].wall_over_ideal == pytest.approx(2.0)
    assert by_name["x"].cpu_ratio is None  # no baseline at N=7


def test_repeated_cells_keep_the_median_try_and_the_worst_outcome() -> None:
    tries = [_cell("agentkit", cpu, 1.0) for cpu in (0.9, 0.3, 0.5)]
    tries[0] = tries[0].model_copy(update={"runs_ok": 8, "errors": ["TimeoutError: x"]})
    chosen = median_cell(tries)
    assert chosen.cpu_s == pytest.approx(0.5)
    assert chosen.runs_ok == 8
    assert chosen.errors == ["TimeoutError: x"]
    assert len(chosen.tries_cpu_ms_per_step) == 3


def test_quick_plan_keeps_the_target_cell() -> None:
    assert quick_plan("agentkit", 50.0) == [1, 100, 1000]
    assert quick_plan("raw_aiohttp", 50.0) == [1, 100, 1000]
    assert quick_plan("openai_agents", 50.0) == [1, 100]
    assert quick_plan("agentkit", 0.0) == [1, 100]
