"""The collector thresholds of runs in flight (``agentkit.gc_tuning.run_gc``): raised only over
CPython's default, only while runs go, put back after, and off when asked."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from agentkit.gc_tuning import (
    CPYTHON_DEFAULT,
    RUN_THRESHOLDS,
    run_gc,
    run_gc_enabled,
    set_run_gc,
    tune_gc,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def default_gc() -> Iterator[None]:
    before, enabled, was_on = gc.get_threshold(), gc.isenabled(), run_gc_enabled()
    gc.set_threshold(*CPYTHON_DEFAULT)
    gc.enable()
    set_run_gc(True)
    yield
    gc.set_threshold(*before)
    (gc.enable if enabled else gc.disable)()
    set_run_gc(was_on)


def test_runs_raise_the_default_thresholds_and_the_last_one_puts_them_back() -> None:
    with run_gc():
        assert gc.get_threshold() == RUN_THRESHOLDS
        with run_gc():  # a second concurrent run
            assert gc.get_threshold() == RUN_THRESHOLDS
        assert gc.get_threshold() == RUN_THRESHOLDS  # the first is still going
    assert gc.get_threshold() == CPYTHON_DEFAULT


def test_thresholds_put_back_when_a_run_raises() -> None:
    with pytest.raises(RuntimeError), run_gc():
        raise RuntimeError("boom")
    assert gc.get_threshold() == CPYTHON_DEFAULT


def test_a_process_that_chose_its_own_thresholds_is_left_alone() -> None:
    gc.set_threshold(1234, 5, 6)
    with run_gc():
        assert gc.get_threshold() == (1234, 5, 6)
    assert gc.get_threshold() == (1234, 5, 6)


def test_a_change_made_during_a_run_is_kept() -> None:
    with run_gc():
        gc.set_threshold(999, 9, 9)
    assert gc.get_threshold() == (999, 9, 9)


def test_tune_gc_during_a_run_is_kept_even_at_the_runs_own_thresholds() -> None:
    with run_gc():
        tune_gc()  # the same numbers as the runs' own: still the process's choice now
    assert gc.get_threshold() == RUN_THRESHOLDS


def test_a_disabled_collector_is_left_alone() -> None:
    gc.disable()
    with run_gc():
        assert gc.get_threshold() == CPYTHON_DEFAULT
        assert not gc.isenabled()


def test_switched_off() -> None:
    set_run_gc(False)
    with run_gc():
        assert gc.get_threshold() == CPYTHON_DEFAULT
    with pytest.raises(TypeError):
        set_run_gc("no")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "enabled"),
    [
        *[("0", False), ("false", False), ("off", False), (" No ", False), ("OFF", False)],
        *[("1", True), ("true", True), ("on", True)],
    ],
)
def test_the_environment_switch(monkeypatch: pytest.MonkeyPatch, value: str, enabled: bool) -> None:
    from agentkit import gc_tuning

    monkeypatch.setenv("AGENTKIT_RUN_GC", value)
    assert gc_tuning._RunGC().enabled is enabled


def test_on_without_the_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from agentkit import gc_tuning

    monkeypatch.delenv("AGENTKIT_RUN_GC", raising=False)
    assert gc_tuning._RunGC().enabled is True


async def test_an_agent_run_uses_them() -> None:
    """During ``Agent.run`` (seen from inside a tool) the thresholds are the runs'; after, the
    default again. A real chat server (the project's SGLang test server) on loopback."""
    from agentkit import Agent, tool
    from agentkit.dialects.glm45 import format_assistant
    from agentkit.models import SGLangChat
    from agentkit.testing import SGLangTestServer

    seen: list[tuple[int, int, int]] = []

    @tool
    def look() -> str:
        """Looks at the collector."""
        seen.append(gc.get_threshold())
        return "ok"

    script = [format_assistant("Look.", "", [("look", {})]), format_assistant("Done.", "done", [])]
    async with SGLangTestServer(policy=script) as server:
        agent: Agent[None, None] = Agent(model=SGLangChat(server.base_url), tools=[look])
        async with agent:
            result = await agent.run("look")
    assert result.ok, result.error
    assert seen == [RUN_THRESHOLDS]
    assert gc.get_threshold() == CPYTHON_DEFAULT
