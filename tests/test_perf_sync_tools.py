"""Where a sync tool runs (``agentkit.sync_tools``): the adaptive rule, its switches, and the
outcomes a user sees staying the same whichever thread a call runs on."""

from __future__ import annotations

import contextvars
import threading
import time
from typing import Any

import anyio
import anyio.from_thread
import pytest

from agentkit import tool
from agentkit.sync_tools import FAST_STREAK, SyncCaller
from agentkit.tool import RunContext, ToolStatus

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _ctx() -> RunContext[None]:
    return RunContext(deps=None)


async def _threads_of(t: Any, calls: int, **arguments: Any) -> list[bool]:
    """For each call: did it run on the event loop's own thread?"""
    loop_thread = threading.get_ident()
    seen: list[bool] = []
    for _ in range(calls):
        outcome = await t.call(arguments, _ctx())
        assert outcome.status is ToolStatus.OK, outcome
        seen.append(int(outcome.output) == loop_thread)
    return seen


async def test_a_quick_sync_tool_moves_onto_the_loop_after_its_streak() -> None:
    @tool
    def where() -> int:
        """Which thread runs me."""
        return threading.get_ident()

    seen = await _threads_of(where, 60)
    assert seen[:FAST_STREAK] == [False] * FAST_STREAK  # probed in worker threads first
    assert seen[-1] is True  # then inline (a noisy machine may take a few more calls)
    assert where._sync is not None and where._sync.calls_inline > 0


async def test_a_blocking_sync_tool_never_runs_on_the_loop() -> None:
    @tool
    def slow() -> int:
        """Sleeps, so it blocks whatever thread runs it."""
        time.sleep(0.01)
        return threading.get_ident()

    assert await _threads_of(slow, FAST_STREAK + 3) == [False] * (FAST_STREAK + 3)
    assert slow._sync is not None and slow._sync.calls_inline == 0


async def test_a_quick_tool_that_starts_blocking_goes_back_to_threads() -> None:
    blocking = {"on": False}

    @tool
    def sometimes() -> int:
        """Quick until told to block."""
        if blocking["on"]:
            time.sleep(0.01)
        return threading.get_ident()

    seen = await _threads_of(sometimes, 60)
    assert seen[-1] is True
    caller = sometimes._sync
    assert caller is not None
    blocking["on"] = True
    assert await _threads_of(sometimes, 1) == [True]  # this one held the loop: the bound
    assert caller.strikes == 1 and not caller.runs_inline
    assert caller.streak_needed == 2 * FAST_STREAK
    assert await _threads_of(sometimes, 4) == [False] * 4  # and now it cannot again


async def test_inline_false_always_uses_a_worker_thread_and_may_call_back() -> None:
    async def remote() -> int:
        return 7

    @tool(inline=False)
    def calls_back() -> int:
        """Calls the event loop from its worker thread."""
        return anyio.from_thread.run(remote) * 0 + threading.get_ident()

    assert await _threads_of(calls_back, FAST_STREAK + 5) == [False] * (FAST_STREAK + 5)


async def test_inline_true_always_runs_on_the_loop() -> None:
    @tool(inline=True)
    def here() -> int:
        """Runs on the loop."""
        return threading.get_ident()

    assert await _threads_of(here, 2) == [True, True]


def test_inline_must_be_a_bool_or_none() -> None:
    def f() -> str:
        return ""

    with pytest.raises(TypeError, match="inline"):
        tool(inline="yes")(f)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="inline"):
        SyncCaller(f, inline=1)  # type: ignore[arg-type]


VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="run")


async def test_an_inline_call_cannot_change_the_runs_context() -> None:
    @tool(inline=True)
    def setter() -> str:
        """Sets a context variable."""
        VAR.set("tool")
        return VAR.get()

    outcome = await setter.call({}, _ctx())
    assert outcome.output == "tool"
    assert VAR.get() == "run"


async def test_errors_and_validation_are_the_same_inline_and_threaded() -> None:
    def fails(n: int) -> str:
        """Raises for odd numbers."""
        if n % 2:
            raise ValueError(f"odd {n}")
        return f"even {n}"

    threaded, inline = tool(inline=False)(fails), tool(inline=True)(fails)
    for arguments in ({"n": 2}, {"n": 3}, {"n": "x"}, {}):
        a, b = await threaded.call(arguments, _ctx()), await inline.call(arguments, _ctx())
        assert (a.status, a.output, a.error, a.error_type) == (
            b.status,
            b.output,
            b.error,
            b.error_type,
        )
    assert (await inline.call({"n": 3}, _ctx())).status is ToolStatus.ERROR


async def test_a_threaded_call_still_times_out() -> None:
    @tool(timeout=0.05, inline=False)
    def stuck() -> str:
        """Never answers in time."""
        time.sleep(0.5)
        return "late"

    outcome = await stuck.call({}, _ctx())
    assert outcome.status is ToolStatus.TIMEOUT
