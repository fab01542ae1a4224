"""The coding-agent example fixes its failing test end to end in a container."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from agentkit.models import SGLangChat
from agentkit.testing import SGLangTestServer
from agentkit_sandboxes.docker_sandbox import DockerSandbox
from tests.sandbox_support import TEST_CONFIG

pytestmark = [pytest.mark.docker, pytest.mark.anyio]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "coding_agent"
ORIGINAL = (EXAMPLE / "repo" / "calculator.py").read_text()


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("coding_agent_run", EXAMPLE / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def test_agent_fixes_the_failing_test(engine: object) -> None:
    example = load_example()
    async with SGLangTestServer(policy=example.scripted_engineer) as server:
        model = SGLangChat(server.base_url)
        try:
            report = await example.fix_repository(model)
        finally:
            await model.aclose()
    assert report.result.ok, report.result.error
    assert "returns a + b" in report.result.text
    assert report.tests_passed, report.test_output
    assert "2 passed" in report.test_output
    assert "-    return a - b" in report.diff
    assert "+    return a + b" in report.diff
    assert "test_calculator.py" not in report.diff  # the tests were not touched
    calls = [
        call.name
        for message in report.result.messages
        for call in getattr(message, "tool_calls", None) or []
    ]
    assert calls == ["list_files", "run_tests", "read_file", "edit_file", "run_tests"]
    # the host copy is untouched: everything happened in the container
    assert (EXAMPLE / "repo" / "calculator.py").read_text() == ORIGINAL


async def test_without_the_fix_the_tests_fail(engine: object) -> None:
    """The check above can fail: a model that gives up leaves the tests failing, no diff."""
    example = load_example()
    box = await DockerSandbox.create(engine, TEST_CONFIG)  # type: ignore[arg-type]
    try:
        async with SGLangTestServer(policy=["<think>no</think>\nI give up."]) as server:
            model = SGLangChat(server.base_url)
            try:
                report = await example.fix_repository(model, sandbox=box)
            finally:
                await model.aclose()
    finally:
        await box.destroy()
    assert not report.tests_passed
    assert "1 failed" in report.test_output
    assert report.diff == ""
