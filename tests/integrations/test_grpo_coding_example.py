"""The GRPO coding example, small: 2 samples of the coding task in real containers against the
test server, scored by running the tests there, exported for slime and verl."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from agentkit.models.sglang_tokens import SGLangTokens
from agentkit.testing import SGLangTestServer, build_test_tokenizer
from tests.sandbox_support import TEST_CONFIG

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.anyio]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "grpo_coding" / "run.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("grpo_coding_run", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def test_grpo_rollout_scored_by_tests_and_exported(no_leaks: None, tmp_path: Path) -> None:
    example = load_example()
    store = tmp_path / "run.jsonl"
    async with SGLangTestServer(policy=example.ScriptedEngineer()) as server:
        model = SGLangTokens(server.base_url, build_test_tokenizer())
        try:
            report = await example.grpo_rollout(
                model, store, repos=[example.REPO], n=2, config=TEST_CONFIG
            )
        finally:
            await model.aclose()
    assert report.failures == [] and report.completed == 2
    reports = example.export_all(store, tmp_path / "out")
    samples = [json.loads(line) for line in (tmp_path / "out" / "slime.jsonl").open()]
    # the first sample fixed the bug (its tests pass), the second gave up: one group, 2 rewards
    assert [s["reward"] for s in samples] == [1.0, 0.0]
    assert [s["metadata"]["reward_components"]["tests_passed"] for s in samples] == [True, False]
    assert {s["group_index"] for s in samples} == {0}
    assert all(s["status"] == "completed" for s in samples)
    verl = [json.loads(line) for line in (tmp_path / "out" / "verl.jsonl").open()]
    assert [r["reward_score"] for r in verl] == [1.0, 0.0] and len({r["uid"] for r in verl}) == 1
    assert reports["verl_sft"].rows == 2
    assert all(r.dropped_groups == [] for r in reports.values())
    if "slime.pt" in reports:
        assert (tmp_path / "out" / "slime" / "0.pt").exists()
