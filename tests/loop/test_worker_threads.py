"""The worker pool behind sync tools (``agentkit.worker_threads``): calls run off the loop, in
a copy of the caller's context; slow calls do not hold up quick ones; cancelling abandons; the
pool stops with its loop. Bounds below only stop a broken test from hanging (no timings)."""

from __future__ import annotations

import asyncio
import contextvars
import subprocess
import sys
import threading
import time
import traceback
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import pytest

from agentkit import tool, worker_threads
from agentkit.sync_tools import SyncCaller
from agentkit.tool import RunContext, ToolStatus

pytestmark = pytest.mark.anyio

GUARD_S = 10  # a broken pool hangs; this turns the hang into a failure


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    if request.param == "trio":
        pytest.importorskip("trio")
    return str(request.param)


def _pool() -> worker_threads._Pool:
    return worker_threads.pool_of(asyncio.get_running_loop())


async def _until(check: Any) -> None:
    """Wait (on the loop) until ``check()`` is true, for at most GUARD_S."""
    for _ in range(GUARD_S * 200):
        if check():
            return
        await anyio.sleep(0.005)
    raise AssertionError("the condition never became true")


async def _cancel_once_running(fn: Any, running: threading.Event) -> anyio.CancelScope:
    """Run ``fn`` through the pool in a task, cancel the task once ``running`` is set, and
    return the cancelled scope (back on the loop; the call itself may still be running)."""
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker_threads.run_sync, fn)
            await anyio.to_thread.run_sync(running.wait, GUARD_S)
            scope.cancel()
    return scope


async def test_a_call_runs_in_another_thread_and_returns_its_value() -> None:
    here = threading.get_ident()
    with anyio.fail_after(GUARD_S):
        there = await worker_threads.run_sync(threading.get_ident)
        assert await worker_threads.run_sync(divmod, 7, 2) == (3, 1)
    assert there != here


async def test_a_blocking_call_does_not_stop_the_loop() -> None:
    release = threading.Event()
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while ticks < 5:
            ticks += 1
            await anyio.sleep(0.005)
        release.set()

    with anyio.fail_after(GUARD_S):
        async with anyio.create_task_group() as tg:
            tg.start_soon(tick)
            assert await worker_threads.run_sync(release.wait, GUARD_S) is True
    assert ticks == 5  # the ticker ran while the call blocked (a frozen loop: never released)


async def test_a_slow_call_does_not_hold_up_quick_ones_queued_behind_it() -> None:
    release = threading.Event()
    try:
        with anyio.fail_after(GUARD_S):
            async with anyio.create_task_group() as tg:
                tg.start_soon(worker_threads.run_sync, release.wait, GUARD_S)
                await anyio.lowlevel.checkpoint()
                for i in range(3):  # each waits behind the slow one unless another worker runs
                    assert await worker_threads.run_sync(abs, -i) == i
                assert not release.is_set()
                release.set()
    finally:
        release.set()


async def test_cancelling_the_caller_abandons_the_running_call() -> None:
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def blocks() -> str:
        started.set()
        release.wait(GUARD_S)
        finished.set()
        return "late"

    try:
        with anyio.fail_after(GUARD_S):
            scope = await _cancel_once_running(blocks, started)
            assert scope.cancelled_caught and not finished.is_set()  # back before the call ended
            release.set()
            await anyio.to_thread.run_sync(finished.wait, GUARD_S)
            assert await worker_threads.run_sync(str, 5) == "5"  # and the pool goes on
    finally:
        release.set()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_call_cancelled_before_it_started_is_not_run() -> None:
    release = threading.Event()
    ran: list[int] = []
    pool = _pool()
    workers = pool.workers
    try:
        with anyio.fail_after(GUARD_S):
            slow = [
                asyncio.ensure_future(worker_threads.run_sync(release.wait, GUARD_S))
                for _ in range(max(workers, 1))
            ]
            await anyio.lowlevel.checkpoint()
            queued = asyncio.ensure_future(worker_threads.run_sync(ran.append, 1))
            await anyio.lowlevel.checkpoint()
            queued.cancel()
            release.set()
            assert all(await asyncio.gather(*slow))
            assert await worker_threads.run_sync(ran.append, 2) is None
    finally:
        release.set()
    assert ran == [2]


async def test_a_tool_timeout_abandons_the_call_and_the_next_call_runs() -> None:
    release = threading.Event()

    @tool(timeout=0.05)
    def waits(block: bool) -> str:
        """Blocks until released when asked to."""
        if block:
            release.wait(GUARD_S)
        return "done"

    ctx: RunContext[None] = RunContext(deps=None)
    try:
        with anyio.fail_after(GUARD_S):
            assert (await waits.call({"block": True}, ctx)).status is ToolStatus.TIMEOUT
            outcome = await waits.call({"block": False}, ctx)
        assert (outcome.status, outcome.output) == (ToolStatus.OK, "done")
    finally:
        release.set()


VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")


async def test_the_call_sees_the_callers_context_and_cannot_change_it() -> None:
    VAR.set("run")

    def swap() -> str:
        seen = VAR.get()
        VAR.set("tool")
        return seen

    with anyio.fail_after(GUARD_S):
        assert await worker_threads.run_sync(swap) == "run"
        assert await worker_threads.run_sync(VAR.get) == "run"  # not "tool": a fresh copy
    assert VAR.get() == "run"


async def test_an_exception_reaches_the_caller_with_its_traceback() -> None:
    def deep_failure(n: int) -> None:
        raise ValueError(f"bad {n}")

    with anyio.fail_after(GUARD_S), pytest.raises(ValueError, match="bad 3") as caught:
        await worker_threads.run_sync(deep_failure, 3)
    names = [frame.name for frame in traceback.extract_tb(caught.value.__traceback__)]
    assert "deep_failure" in names


async def test_stop_iteration_becomes_a_runtime_error() -> None:
    with anyio.fail_after(GUARD_S), pytest.raises(RuntimeError, match="StopIteration"):
        await worker_threads.run_sync(next, iter(()))


async def test_anyio_from_thread_reaches_the_loop_from_a_call() -> None:
    loop_thread = threading.get_ident()

    async def on_the_loop(x: int) -> tuple[int, int]:
        await anyio.lowlevel.checkpoint()
        return x * 2, threading.get_ident()

    def calls_back() -> tuple[int, int, int]:
        doubled, where = anyio.from_thread.run(on_the_loop, 21)
        same = anyio.from_thread.run_sync(threading.get_ident)
        return doubled, where, same

    with anyio.fail_after(GUARD_S):
        doubled, where, same = await worker_threads.run_sync(calls_back)
    assert (doubled, where, same) == (42, loop_thread, loop_thread)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_quick_calls_from_many_runs_share_a_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """1,000 concurrent quick calls take one worker (not one thread each, nor 40): no worker
    is added while calls are taken. The stall bound is widened so load cannot add one."""
    monkeypatch.setattr(worker_threads, "STALL_S", GUARD_S)
    with anyio.fail_after(GUARD_S):
        await worker_threads.run_sync(int)  # the pool has its first worker
        pool = _pool()
        before = pool.started_total
        results = await asyncio.gather(*(worker_threads.run_sync(abs, -i) for i in range(1000)))
    assert results == list(range(1000))
    assert pool.started_total == before and pool.workers == 1


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_extra_workers_stop_when_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_threads, "STALL_S", 0.001)
    monkeypatch.setattr(worker_threads, "IDLE_S", 0.02)
    monkeypatch.setattr(worker_threads, "POLL_S", 0.01)
    release = threading.Event()
    try:
        with anyio.fail_after(GUARD_S):
            async with anyio.create_task_group() as tg:
                for _ in range(3):
                    tg.start_soon(worker_threads.run_sync, release.wait, GUARD_S)
                    await anyio.sleep(0.01)
                pool = _pool()
                await _until(lambda: pool.workers >= 3)  # each blocked call has a worker
                release.set()
            await _until(lambda: pool.workers <= 1)  # the extras retire; the first stays
    finally:
        release.set()
    assert pool.workers == 1


_EXIT_SCRIPT = """
import asyncio, sys, threading, time
from agentkit import worker_threads

worker_threads.POLL_S = 0.05

async def main():
    for _ in range(3):
        await worker_threads.run_sync(time.sleep, 0)
    assert worker_threads._pools, "no pool was used"

if sys.argv[1] == "asyncio.run":  # the loop's tasks are cancelled at its end
    asyncio.run(main())
    assert not worker_threads._pools, "the pool outlived its loop"
else:  # a loop closed with its tasks still pending: nobody cancels the workers' hosts
    loop = asyncio.new_event_loop()
    loop.run_until_complete(main())
    loop.close()
deadline = time.monotonic() + 10
while threading.active_count() > 1 and time.monotonic() < deadline:
    time.sleep(0.01)
print(threading.active_count(), sorted(t.name for t in threading.enumerate()))
"""


@pytest.mark.parametrize("how", ["asyncio.run", "loop.close"])
def test_the_workers_stop_with_their_loop_and_the_process_exits(how: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _EXIT_SCRIPT, how], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split(" ", 1)[0] == "1", done.stdout  # only the main thread is left


_LEFT_OPEN_SCRIPT = """
import asyncio, time
from agentkit import worker_threads

async def main():
    await worker_threads.run_sync(time.sleep, 0)

loop = asyncio.new_event_loop()  # never closed: nothing stops the workers but the exit
loop.run_until_complete(main())
print("end of script")
"""


def test_the_process_exits_with_a_loop_left_open() -> None:
    """The exit hook stops the workers (a non-daemon thread waiting for work would keep the
    process alive); the subprocess timeout only turns such a hang into a failure."""
    done = subprocess.run(
        [sys.executable, "-c", _LEFT_OPEN_SCRIPT], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout) == (0, "end of script\n"), done.stderr


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_one_host_cancelled_stops_every_worker_of_its_pool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(worker_threads, "STALL_S", 0.001)
    monkeypatch.setattr(worker_threads, "IDLE_S", GUARD_S * 100)  # no retiring for idleness
    release = threading.Event()
    try:
        with anyio.fail_after(GUARD_S):
            pool = _pool()
            async with anyio.create_task_group() as tg:
                for _ in range(2):
                    tg.start_soon(worker_threads.run_sync, release.wait, GUARD_S)
                await _until(lambda: pool.workers >= 2)
                release.set()
        next(iter(pool.hosts)).cancel()  # one host only, and the loop goes on
        await _until(lambda: pool.workers == 0)
    finally:
        release.set()
    assert pool.closed and _pool() is not pool
    assert await worker_threads.run_sync(abs, -3) == 3  # a new pool serves the loop


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_call_queued_in_a_stopped_pool_does_not_wait_forever() -> None:
    with anyio.fail_after(GUARD_S):
        await worker_threads.run_sync(int)  # the pool has a worker
        pool = _pool()
        pool.stop()
        future = pool.submit(abs, (-1,))  # behind the stop: run by a worker still there, or failed
        try:
            outcome: object = await future
        except RuntimeError as exc:
            outcome = str(exc)
    assert outcome in (1, "the worker pool stopped before the call started")


class _FakePool:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.closed = False


def _lookup_interleaved(
    loop: asyncio.AbstractEventLoop, other: asyncio.AbstractEventLoop, at: int
) -> tuple[Any, bool]:
    """``pool_of(loop)`` with ``pool_of(other)`` run between its bytecodes ``at`` and
    ``at + 1`` (as another thread may); returns the pool and whether bytecode ``at`` came."""
    pool_of = worker_threads.pool_of
    seen, reached = 0, False

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        nonlocal seen, reached
        if frame.f_code is not pool_of.__code__:
            return None
        frame.f_trace_opcodes = True
        if event == "opcode":
            seen += 1
            if seen == at:
                reached = True
                pool_of(other)
        return tracer

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        found = pool_of(loop)
    finally:
        sys.settrace(previous)
    return found, reached


def test_the_last_pool_is_never_paired_with_another_threads_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another thread's lookup may run between any two bytecodes of this one (simulated by a
    tracer calling it there); whatever the interleaving, each loop gets its own pool."""
    monkeypatch.setattr(worker_threads, "_Pool", _FakePool)
    monkeypatch.setattr(worker_threads, "_pools", {})
    loop_a, loop_b = asyncio.new_event_loop(), asyncio.new_event_loop()
    pool_of = worker_threads.pool_of
    try:
        pool_a, pool_b = pool_of(loop_a), pool_of(loop_b)
        at, reached = 0, True
        while reached:
            at += 1
            monkeypatch.setattr(worker_threads, "_last", (None, None))  # the slow path
            found, reached = _lookup_interleaved(loop_a, loop_b, at)
            assert found is pool_a
            assert (pool_of(loop_b), pool_of(loop_a)) == (pool_b, pool_a), f"at bytecode {at}"
        assert at > 10  # the tracer did step through the lookup
    finally:
        loop_a.close()
        loop_b.close()


def _wait_for(check: Any) -> bool:
    for _ in range(GUARD_S * 200):
        if check():
            return True
        time.sleep(0.005)
    return False


def test_a_worker_drops_the_pool_of_a_loop_closed_without_cancelling_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(worker_threads, "POLL_S", 0.01)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(worker_threads.run_sync(int))
    pool = worker_threads._pools[loop]
    loop.close()  # its tasks (the workers' hosts) still pending
    assert _wait_for(lambda: loop not in worker_threads._pools and pool.workers == 0)
    assert worker_threads._last[1] is not pool


def test_a_new_pool_drops_the_pools_of_closed_loops(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_threads, "POLL_S", GUARD_S)  # the idle workers do not look
    old = asyncio.new_event_loop()
    old.run_until_complete(worker_threads.run_sync(int))
    old.close()
    assert old in worker_threads._pools
    new = asyncio.new_event_loop()
    try:
        new.run_until_complete(worker_threads.run_sync(int))  # a lookup that makes a pool
    finally:
        new.close()
    assert old not in worker_threads._pools


async def test_the_fallback_under_other_backends_is_anyio(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under trio there is no asyncio loop: the call goes through anyio's own threads."""
    submitted: list[object] = []
    submit = worker_threads._Pool.submit

    def counted(self: worker_threads._Pool, fn: Any, args: tuple[Any, ...]) -> Any:
        submitted.append(fn)
        return submit(self, fn, args)

    monkeypatch.setattr(worker_threads._Pool, "submit", counted)
    here = threading.get_ident()
    with anyio.fail_after(GUARD_S):
        assert await worker_threads.run_sync(threading.get_ident) != here
    assert len(submitted) == (1 if anyio_backend == "asyncio" else 0)


async def test_a_time_limit_abandons_the_call_with_timeout_error() -> None:
    release, finished = threading.Event(), threading.Event()

    def blocks() -> str:
        release.wait(GUARD_S)
        finished.set()
        return "late"

    try:
        with anyio.move_on_after(GUARD_S) as guard:  # not fail_after: its TimeoutError
            with pytest.raises(TimeoutError):  # would pass for the time limit's
                await worker_threads.run_sync_timed(blocks, (), 0.05)
            assert not finished.is_set()  # back before the call ended
            assert await worker_threads.run_sync_timed(divmod, (9, 4), GUARD_S) == (2, 1)
            await anyio.lowlevel.checkpoint()  # this task was not left cancelled
    finally:
        release.set()
    assert not guard.cancelled_caught


@pytest.mark.parametrize("time_limit", [0, -1])
async def test_no_time_left_means_the_call_never_starts(
    time_limit: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As ``anyio.fail_after(0)``: TimeoutError, and the function is not even queued."""
    submitted: list[object] = []
    monkeypatch.setattr(worker_threads._Pool, "submit", lambda *call: submitted.append(call))
    ran: list[int] = []
    with anyio.fail_after(GUARD_S), pytest.raises(TimeoutError):
        await worker_threads.run_sync_timed(ran.append, (1,), time_limit)
    assert (submitted, ran) == ([], [])


async def test_a_sync_caller_with_a_time_limit_times_out_and_goes_on() -> None:
    release = threading.Event()

    def waits(block: bool) -> str:
        if block:
            release.wait(GUARD_S)
        return "done"

    caller = SyncCaller(waits)
    try:
        with anyio.move_on_after(GUARD_S) as guard:
            with pytest.raises(TimeoutError):
                await caller.call_threaded({"block": True}, 0.05)
            assert await caller.call_threaded({"block": False}, GUARD_S) == "done"
            assert await caller.call_threaded({"block": False}, None) == "done"
    finally:
        release.set()
    assert not guard.cancelled_caught


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("in_a_call", [False, True])
async def test_a_worker_starved_of_the_cpu_is_no_reason_for_another(in_a_call: bool) -> None:
    """Calls wait and none was taken between two checks: another worker starts only if the
    one there is inside a call (held by it), not if it waits for the CPU or the GIL."""
    pool = worker_threads._Pool(asyncio.get_running_loop())  # not registered: no real worker
    started: list[int] = []
    pool._start_worker = lambda: started.append(1)  # type: ignore[method-assign]
    pool.workers, pool.taken, pool.calling = 1, [0, 3], [False, in_a_call]
    pool.jobs.put(None)  # a call waiting in the queue
    pool._check()  # the first check notes the count of calls taken
    pool._check()  # none taken since
    assert pool.watch is not None
    pool.watch.cancel()
    assert started == ([1] if in_a_call else [])


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_check_cancelled_is_callable_in_a_call_but_follows_the_pool() -> None:
    """Documented limit: in a pool worker ``check_cancelled`` sees the pool's task, not the
    run's, so it does not raise even when the calling run has been cancelled."""
    entered, release = threading.Event(), threading.Event()
    seen: list[str] = []

    def checks() -> None:
        entered.set()
        release.wait(GUARD_S)
        try:
            anyio.from_thread.check_cancelled()
            seen.append("not cancelled")
        except BaseException as exc:  # what it raised is the finding
            seen.append(type(exc).__name__)

    try:
        with anyio.fail_after(GUARD_S):
            await _cancel_once_running(checks, entered)
            release.set()
            await _until(lambda: bool(seen))
    finally:
        release.set()
    assert seen == ["not cancelled"]
