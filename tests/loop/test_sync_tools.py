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

from agentkit import sync_tools, tool
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


async def test_by_default_a_sync_tool_always_runs_in_a_worker_thread() -> None:
    @tool
    def quick() -> int:
        """Quick, yet never on the loop unless asked."""
        return threading.get_ident()

    assert await _threads_of(quick, FAST_STREAK + 5) == [False] * (FAST_STREAK + 5)


async def test_by_default_a_tool_that_turns_blocking_does_not_freeze_other_runs() -> None:
    """A tool quick for a while that then blocks until released (the rollout-kill case): the
    event loop goes on meanwhile, so other runs (here a ticking task) make progress."""
    release = threading.Event()
    ticks = 0

    @tool
    def waits(block: bool) -> str:
        """Blocks until released when asked to."""
        if block:
            release.wait(5)
        return "done"

    for _ in range(FAST_STREAK + 2):
        assert (await waits.call({"block": False}, _ctx())).output == "done"

    async def tick() -> None:
        nonlocal ticks
        while not release.is_set():
            ticks += 1
            if ticks >= 5:
                release.set()
            await anyio.sleep(0.01)

    async with anyio.create_task_group() as tg:
        tg.start_soon(tick)
        outcome = await waits.call({"block": True}, _ctx())
        seen = ticks  # the other task ran while the call was blocked (a frozen loop: 0)
    assert outcome.output == "done" and seen >= 5


@pytest.fixture
def wide_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """A quick call's verdict must not hang on the machine's load (no timing assertions): the
    bound is widened to 5 ms, and the blocking calls below sleep ten times that."""
    monkeypatch.setattr(sync_tools, "INLINE_BOUND_S", 0.005)


@pytest.mark.usefixtures("wide_bound")
async def test_a_quick_sync_tool_moves_onto_the_loop_after_its_streak() -> None:
    @tool(inline="auto")
    def where() -> int:
        """Which thread runs me."""
        return threading.get_ident()

    seen = await _threads_of(where, 60)
    assert seen[:FAST_STREAK] == [False] * FAST_STREAK  # probed in worker threads first
    assert seen[-1] is True  # then inline (a noisy machine may take a few more calls)
    assert where._sync is not None and where._sync.calls_inline > 0


@pytest.mark.usefixtures("wide_bound")
async def test_a_blocking_sync_tool_never_runs_on_the_loop() -> None:
    @tool(inline="auto")
    def slow() -> int:
        """Sleeps, so it blocks whatever thread runs it."""
        time.sleep(0.05)
        return threading.get_ident()

    assert await _threads_of(slow, FAST_STREAK + 3) == [False] * (FAST_STREAK + 3)
    assert slow._sync is not None and slow._sync.calls_inline == 0


@pytest.mark.usefixtures("wide_bound")
async def test_a_quick_tool_that_starts_blocking_goes_back_to_threads() -> None:
    blocking = {"on": False}

    @tool(inline="auto")
    def sometimes() -> int:
        """Quick until told to block."""
        if blocking["on"]:
            time.sleep(0.05)
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


async def test_the_default_worker_thread_may_call_back_into_the_loop() -> None:
    async def remote() -> int:
        return 7

    @tool
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


def test_inline_must_be_a_bool_or_auto() -> None:
    def f() -> str:
        return ""

    with pytest.raises(TypeError, match="inline"):
        tool(inline="yes")(f)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="inline"):
        SyncCaller(f, inline=1)  # type: ignore[arg-type]
    assert SyncCaller(f, inline=None).inline == "auto"  # the first spelling of "auto"


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
    @tool(timeout=0.05, inline="auto")
    def stuck() -> str:
        """Never answers in time."""
        time.sleep(0.5)
        return "late"

    outcome = await stuck.call({}, _ctx())
    assert outcome.status is ToolStatus.TIMEOUT


async def test_a_copy_with_a_wrapping_handler_goes_through_the_wrapper() -> None:
    """Code that copies a tool and wraps its handler (as toolsets do) keeps its wrapper, even
    when the original runs inline."""
    import copy

    @tool(inline=True)
    def plain() -> str:
        """Answers."""
        return "inner"

    inner = plain.handler

    async def wrapped(values: dict[str, Any], ctx: RunContext[Any]) -> Any:
        return "wrapped " + str(await inner(values, ctx))

    clone = copy.copy(plain)
    clone.handler = wrapped
    assert (await clone.call({}, _ctx())).output == "wrapped inner"
    assert (await plain.call({}, _ctx())).output == "inner"
