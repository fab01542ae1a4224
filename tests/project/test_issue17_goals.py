"""The issue-17 goals table reads its figures from the benchmarks' JSON and computes "met" from
them: over a threshold is "no", a peer that was not measured is "not measured", a wrong answer
fails goal 5 however fast it came."""

from __future__ import annotations

import copy
from typing import Any

from benchmarks.issue17.goals import (
    embedded_goal,
    parser_goal,
    runtime_goals,
    token_goal,
    wrong_answers,
)

QUESTION = "What is (17 + 25) * 3?"


def _cell(contender: str, n: int, cpu: float, rss: float) -> dict[str, Any]:
    return {
        "cell": {
            "contender": contender,
            "n": n,
            "latency_ms": 0.0,
            "cpu_ms_per_step": cpu,
            "rss_peak_mib": rss,
        }
    }


def _runtime(agentkit_cpu: float, agentkit_rss: float) -> dict[str, Any]:
    rows = [
        _cell("raw_aiohttp", 100, 0.1, 50.0),
        _cell("raw_aiohttp", 1000, 0.2, 70.0),
        _cell("agentkit", 100, agentkit_cpu, 60.0),
        _cell("agentkit", 1000, 0.24, agentkit_rss),
        _cell("agentkit@before", 100, 0.4, 64.0),
        _cell("agentkit@before", 1000, 0.7, 120.0),
    ]
    return {
        "rows": rows,
        "config": {"contenders": ["raw_aiohttp", "agentkit", "agentkit_async", "pydantic_ai"]},
        "machine": {"load_average_before": [0.1] * 3, "load_average_after": [0.2] * 3},
        "failures": [],
    }


def test_runtime_goals_follow_the_thresholds() -> None:
    met = {g.number: g for g in runtime_goals(_runtime(agentkit_cpu=0.12, agentkit_rss=84.0))}
    assert met[1].met is True and "1.20x" in met[1].figures and "4.00x -> " in met[1].figures
    assert met[4].met is True and "1.20x" in met[4].figures
    assert met[6].met is True
    missed = {g.number: g for g in runtime_goals(_runtime(agentkit_cpu=0.14, agentkit_rss=98.0))}
    assert missed[1].met is False and "1.40x" in missed[1].figures
    assert missed[4].met is False


def test_the_aiohttp_contender_is_shown_beside_goal_one_without_deciding_it() -> None:
    result = _runtime(agentkit_cpu=0.12, agentkit_rss=84.0)
    result["rows"].append(_cell("agentkit_aiohttp", 100, 0.17, 61.0))
    goal = {g.number: g for g in runtime_goals(result)}[1]
    assert "`own_client=False` (through aiohttp) 1.70x" in goal.figures
    assert goal.met is True  # the default client's figure decides, not the opt-out's


def test_runtime_goal_six_needs_the_async_contender_and_no_failures() -> None:
    result = _runtime(0.12, 84.0)
    result["failures"] = ["pydantic_ai at 0 ms: timed out"]
    assert {g.number: g.met for g in runtime_goals(result)}[6] is False
    result = _runtime(0.12, 84.0)
    result["config"]["contenders"].remove("agentkit_async")
    assert {g.number: g.met for g in runtime_goals(result)}[6] is False


def test_a_missing_run_is_not_measured_rather_than_met() -> None:
    assert all(g.met is None for g in runtime_goals(None))
    assert token_goal(None).met is None
    assert parser_goal(None).met is None
    assert embedded_goal(None, QUESTION).met is None


def test_token_goal() -> None:
    result = {
        "tries": 5,
        "summary": {
            "tokens_over_chat": {"before": 1.77, "after": 1.19},
            "cpu_ms_per_step": {"after/tokens": 0.238, "after/chat": 0.2},
        },
    }
    assert token_goal(result).met is True
    result["summary"]["tokens_over_chat"]["after"] = 1.21
    assert token_goal(result).met is False


def test_the_token_bound_is_shown_beside_goal_two_without_deciding_it() -> None:
    result = {
        "tries": 5,
        "summary": {
            "tokens_over_chat": {"after": 1.5},
            "cpu_ms_per_step": {"after/tokens": 0.18, "after/chat": 0.12},
            "bound_over_chat": 1.1,
            "bound_misses": 3,
        },
    }
    goal = token_goal(result)
    assert "memoised: 1.10x (3 memo misses" in goal.figures
    assert goal.met is False  # token mode's own figure decides, not the bound's


def _group(name: str, vs_sglang: float | None) -> dict[str, Any]:
    speedups = {"agentkit@1a34b1d": 1.5}
    if vs_sglang is not None:
        speedups["sglang 0.5.23"] = vs_sglang
    return {"group": name, "speedups": {"agentkit": speedups}}


def test_parser_goal_thresholds_and_a_missing_peer() -> None:
    groups = [_group("whole text, small", 3.0), _group("whole text, large", 9.0)]
    groups += [_group("streaming, small", 5.1), _group("streaming, large", 20.0)]
    assert parser_goal({"groups": groups}).met is True
    slow = copy.deepcopy(groups)
    slow[2] = _group("streaming, small", 4.9)  # 4.9x passes the whole-text bar, not streaming's
    assert parser_goal({"groups": slow}).met is False
    absent = copy.deepcopy(groups)
    absent[0] = _group("whole text, small", None)
    goal = parser_goal({"groups": absent})
    assert goal.met is None and "SGLang not measured" in goal.figures


def _embedded(wall: float, rss: float, answer: str) -> dict[str, Any]:
    def figure(value: float) -> dict[str, float]:
        return {"median": value}

    run = {"answer": [answer]}
    return {
        "summary": {
            "after": {
                "process, cold cache wall s": figure(wall),
                "process, cold cache peak rss mb": figure(rss),
                "process, cold cache ok": figure(1.0),
            }
        },
        "runs": {"after": {"process": [run], "process_cached": [run]}},
    }


def test_embedded_goal_checks_time_memory_and_the_answer() -> None:
    assert embedded_goal(_embedded(2.5, 320.0, "The calculator returned: 126."), QUESTION).met
    assert not embedded_goal(_embedded(3.2, 320.0, "126"), QUESTION).met
    assert not embedded_goal(_embedded(2.5, 520.0, "126"), QUESTION).met
    wrong = _embedded(2.5, 320.0, "The answer is 42.")
    assert wrong_answers(wrong, QUESTION) == 2
    goal = embedded_goal(wrong, QUESTION)
    assert goal.met is False and "WRONG ANSWER" in goal.figures
