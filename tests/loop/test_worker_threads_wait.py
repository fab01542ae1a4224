"""The loop thread's bounded wait for a call it hands to an idle worker
(``agentkit.worker_threads.SYNC_WAIT_S``): a call done within it returns without its caller
pausing; a longer one is waited for as before; the hand-off delivers each outcome once. Bounds
below only stop a broken test from hanging (no timings)."""

from __future__ import annotations

import asyncio
import contextvars
import random
import threading
import traceback
from collections.abc import Coroutine
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import pytest

from agentkit import worker_threads
from agentkit.sync_tools import SyncCaller

pytestmark = pytest.mark.anyio

GUARD_S = 10  # a broken hand-off hangs; this turns the hang into a failure


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _pool() -> worker_threads._Pool:
    return worker_threads.pool_of(asyncio.get_running_loop())


async def _idle_worker() -> worker_threads._Pool:
    """The loop's pool, once it has a worker waiting for a call."""
    await worker_threads.run_sync(int)
    pool = _pool()
    for _ in range(GUARD_S * 200):
        if True in pool.idle:
            return pool
        await anyio.sleep(0.005)
    raise AssertionError("no worker became idle")


def _finished_at_once(coro: Coroutine[Any, Any, Any]) -> Any:
    """Step ``coro`` once: it must return without suspending (an await that yields to the
    loop would leave it unfinished); return its value."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise AssertionError("the call suspended its caller")


def _here_and_there(x: int) -> tuple[int, int]:
    return x + 1, threading.get_ident()


async def test_a_quick_call_returns_without_the_caller_suspending(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through run_sync, run_sync_timed and a default SyncCaller (both ways in): each returns
    at its first step, and the function ran in the worker, not on the loop thread."""
    monkeypatch.setattr(worker_threads, "SYNC_WAIT_S", GUARD_S)  # load cannot miss the bound
    caller = SyncCaller(_here_and_there)
    loop_thread = threading.get_ident()
    with anyio.fail_after(GUARD_S):
        pool = await _idle_worker()
        before = pool.waited
        calls: list[Coroutine[Any, Any, Any]] = [
            worker_threads.run_sync(_here_and_there, 1),
            worker_threads.run_sync_timed(_here_and_there, (1,), GUARD_S),
            caller({"x": 1}),
            caller.call_threaded({"x": 1}, GUARD_S),
            caller.call_threaded({"x": 1}, None),
        ]
        for coro in calls:
            assert True in pool.idle  # so each can wait, whatever the one before did
            value, thread = _finished_at_once(coro)
            assert value == 2 and thread != loop_thread
    assert pool.waited - before == len(calls)


async def test_each_outcome_is_delivered_once_when_the_call_ends_at_the_bound() -> None:
    """Bounds around a worker's reaction time (0: the loop thread keeps the GIL, so the call
    cannot have run): every call's outcome arrives once, by the wait or by the drain."""
    pool = await _idle_worker()
    waited, waited_past, drained = pool.waited, pool.waited_past, pool.drained
    ran: list[int] = []
    rng = random.Random(17)
    with anyio.fail_after(GUARD_S * 3):
        for i in range(3000):
            bound = rng.choice([0.0, 1e-6, 1e-5, 3e-5, 1e-4, 1e-3])
            job = pool.submit(ran.append, (i,), bound)
            if job.future is None:
                assert job.outcome() is None
            else:
                assert await job.future is None
    assert ran == list(range(3000))  # each ran once, in order
    in_time, late = pool.waited - waited, pool.waited_past - waited_past
    assert in_time + late <= 3000 and in_time > 0 and late > 0  # both ways taken
    assert pool.drained - drained == 3000 - in_time  # the rest came through the drain


async def test_a_call_waiting_for_the_loop_completes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The function waits for an event a loop task sets, then calls back into the loop:
    after the bound the loop runs again, so neither deadlocks."""
    monkeypatch.setattr(worker_threads, "SYNC_WAIT_S", 0.05)
    on_loop = threading.Event()

    async def setter() -> None:
        on_loop.set()

    def waits_for_the_loop() -> int:
        assert on_loop.wait(GUARD_S), "the loop never ran the setter"
        return int(anyio.from_thread.run_sync(threading.get_ident))

    with anyio.fail_after(GUARD_S):
        pool = await _idle_worker()
        late = pool.waited_past
        async with anyio.create_task_group() as tg:
            tg.start_soon(setter)  # runs only once the loop thread stops waiting
            there = await worker_threads.run_sync(waits_for_the_loop)
    assert there == threading.get_ident() and pool.waited_past == late + 1


VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")


def _deep_failure(n: int) -> None:
    raise ValueError(f"bad {n}")


def _swap() -> str:
    seen = VAR.get()
    VAR.set("tool")
    return seen


@pytest.mark.parametrize("wait", [GUARD_S, -1.0], ids=["waited", "queued"])
async def test_outcomes_are_the_same_on_both_paths(
    wait: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_threads, "SYNC_WAIT_S", wait)
    VAR.set("run")
    with anyio.fail_after(GUARD_S):
        pool = await _idle_worker()
        waited = pool.waited
        assert await worker_threads.run_sync(divmod, 7, 2) == (3, 1)
        assert await worker_threads.run_sync(_swap) == "run"
        assert await worker_threads.run_sync(VAR.get) == "run"
        with pytest.raises(ValueError, match="bad 3") as caught:
            await worker_threads.run_sync(_deep_failure, 3)
        names = [frame.name for frame in traceback.extract_tb(caught.value.__traceback__)]
        assert "_deep_failure" in names
        with pytest.raises(RuntimeError, match="sync function raised StopIteration") as stopped:
            await worker_threads.run_sync(next, iter(()))
        assert isinstance(stopped.value.__cause__, StopIteration)
        with pytest.raises(ValueError, match="bad 4"):
            await worker_threads.run_sync_timed(_deep_failure, (4,), GUARD_S)
    assert VAR.get() == "run"
    assert pool.waited - waited == (6 if wait >= 0 else 0)  # the path under test was taken


async def test_a_task_being_cancelled_does_not_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cancellation pending on the caller: the call is queued, not waited for, and the
    caller gets its cancellation at the await."""
    monkeypatch.setattr(worker_threads, "SYNC_WAIT_S", GUARD_S)

    async def cancelled_caller() -> Any:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        return await worker_threads.run_sync(int, 5)

    with anyio.fail_after(GUARD_S):
        pool = await _idle_worker()
        waited = pool.waited
        with pytest.raises(asyncio.CancelledError):
            await asyncio.ensure_future(cancelled_caller())
    assert pool.waited == waited


async def test_a_blocking_call_handed_to_an_idle_worker_lets_other_runs_go_on() -> None:
    """The loop thread waits for it, then (the bound passed) runs the ticker that releases it:
    a wait without a bound would never get there (the call would block until GUARD_S)."""
    release = threading.Event()
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while ticks < 5:
            ticks += 1
            await anyio.sleep(0.005)
        release.set()

    with anyio.fail_after(GUARD_S):
        pool = await _idle_worker()
        late = pool.waited_past
        async with anyio.create_task_group() as tg:
            tg.start_soon(tick)
            await anyio.lowlevel.checkpoint()  # the ticker is waiting for its sleep
            assert await worker_threads.run_sync(release.wait, GUARD_S) is True
    assert ticks == 5 and pool.waited_past == late + 1  # waited for, then left to the drain
