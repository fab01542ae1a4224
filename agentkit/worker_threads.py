"""A cheap hop to a worker thread for sync tools: a few long-lived workers per event loop.

``anyio.to_thread.run_sync`` pays, per call, a checkpoint, a capacity-limiter round trip, a
cancel scope, a wake-up of one of up to 40 threads and one wake-up of the loop; with 1,000
concurrent runs that is 1,000 hand-offs of the GIL. :func:`run_sync` keeps anyio's guarantees
for a sync function (it runs off the event loop, in a copy of the caller's context; cancelling
the caller abandons the call; ``anyio.from_thread`` works inside it) at a fraction of the cost:

- On asyncio, each loop has one :class:`_Pool`: a queue of calls and long-lived workers that
  take calls from it one after another, so while calls are quick one worker drains the whole
  queue with a few GIL hand-offs instead of one per call.
- Results go back in batches: a worker appends each result to the pool's inbox and asks the
  loop to drain it (``call_soon_threadsafe``) only when no drain is pending already.
- A second (third, ...) worker starts only when calls wait in the queue, no worker has taken
  one for :data:`STALL_S` and every worker is inside a call (held by a slow call, not waiting
  for the CPU on a loaded machine), up to :data:`MAX_WORKERS`; one idle for :data:`IDLE_S`
  stops (the first stays while its loop runs). A quick call queued behind slow ones therefore
  waits up to about two :data:`STALL_S` more.
- Each worker is itself started through ``anyio.to_thread.run_sync`` (with a limiter of its
  own), so it is an AnyIO worker thread: ``anyio.from_thread.run`` / ``run_sync`` inside a
  call reach the loop. Unlike a call of its own through anyio, such a callback belongs to the
  pool's task, not to the calling run: cancelling the run does not cancel it, and
  ``anyio.from_thread.check_cancelled`` does not see the run's cancellation.
- When the loop shuts down (its tasks cancelled, as ``asyncio.run`` does), the workers are told
  to stop; a loop closed without that is noticed by its idle workers within :data:`POLL_S`.
  A worker busy with a call that never returns stays until it does, as anyio's would (it is
  not a daemon thread).

Under any other backend (trio) :func:`run_sync` is ``anyio.to_thread.run_sync`` with
``abandon_on_cancel=True``.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections import deque
from collections.abc import Callable
from queue import Empty, SimpleQueue
from typing import Any

import anyio
import anyio.to_thread

_library_cvar: contextvars.ContextVar[str | None] | None
try:  # anyio's worker threads hide the loop's library from sniffio; so do these
    from sniffio import current_async_library_cvar as _library_cvar
except ImportError:  # pragma: no cover - sniffio comes with anyio today
    _library_cvar = None

SYNC_WAIT_S = 0.0005  # the most the loop thread waits for a call it handed to an idle worker
STALL_S = 0.01  # calls queued and none taken this long: another worker starts
IDLE_S = 10.0  # a worker beyond the first stops after this long without a call
POLL_S = 1.0  # how often an idle worker checks whether it is to stop
MAX_WORKERS = 40  # as anyio's default thread limiter


class _Job:
    """One call waiting for, or running in, a worker, and then its outcome.

    A call the loop thread waits for (:data:`SYNC_WAIT_S`) has two locks: ``finished``, held
    until the worker releases it, and ``claim``, which decides who delivers the outcome. The
    worker stores the outcome first and then tries to take ``claim``: if it does, the waiting
    loop thread takes the outcome (the worker releases ``finished``); the loop thread, once
    its wait is over, tries to take ``claim`` too: if it does, it stopped waiting and the
    worker hands the outcome to the batched drain (``future``). A lock taken without blocking
    is taken by one side only, so the outcome goes one way, exactly once."""

    __slots__ = ("args", "claim", "context", "error", "finished", "fn", "future", "result")

    def __init__(
        self, fn: Callable[..., Any], args: tuple[Any, ...], context: contextvars.Context
    ) -> None:
        self.fn = fn
        self.args = args
        self.context = context
        self.future: asyncio.Future[Any] | None = None  # None: the loop thread waits for it
        self.claim: threading.Lock | None = None
        self.finished: threading.Lock | None = None
        self.result: Any = None
        self.error: BaseException | None = None

    def outcome(self) -> Any:
        """Return the call's result or raise its exception (on the thread that waited)."""
        error = self.error
        if error is None:
            return self.result
        self.error = None
        try:
            if isinstance(error, StopIteration):  # as a future would carry it: wrapped
                raise _wrapped_stop(error)
            raise error
        finally:
            del error


def _wrapped_stop(error: StopIteration) -> RuntimeError:
    wrapped = RuntimeError("the sync function raised StopIteration")
    wrapped.__cause__ = error
    return wrapped


def _cancelling() -> bool:
    """Whether the calling task has a cancellation pending (it then waits, and gets it)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class _Pool:
    """The workers of one asyncio event loop, their queue of calls and their results."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.jobs: SimpleQueue[_Job | None] = SimpleQueue()
        self.done: deque[_Job] = deque()
        self.drain_pending = False
        self.lock = threading.Lock()  # guards workers (start/stop only, never per call)
        self.workers = 0
        self.taken = [0]  # calls taken by workers so far (one slot per worker; summed)
        self.calling = [False]  # per slot: that worker is inside a call now
        self.idle = [False]  # per slot: that worker waits for a call (takes the next at once)
        self.taken_at_check = -1
        self.watch: asyncio.TimerHandle | None = None
        self.hosts: set[asyncio.Task[None]] = set()
        self.limiter = anyio.CapacityLimiter(MAX_WORKERS)
        self.closed = False  # a host was cancelled: the loop is shutting down
        self.started_total = 0  # workers ever started (for tests and benchmarks)
        self.waited = 0  # calls the loop thread waited for and got back within the bound
        self.waited_past = 0  # calls it waited for the bound and then left to the drain
        self.drained = 0  # outcomes handed to a waiting future by the drain

    def submit(self, fn: Callable[..., Any], args: tuple[Any, ...], wait: float = -1.0) -> _Job:
        """Queue ``fn(*args)``. With ``wait >= 0``, a worker idle, none queued and the calling
        task not being cancelled, the loop thread then waits up to ``wait`` seconds for it
        (the GIL released, so the worker runs it at once): if it finished, the returned job's
        ``future`` is None and :meth:`_Job.outcome` gives its result; otherwise (as without
        waiting) the result comes to ``job.future``."""
        job = _Job(fn, args, contextvars.copy_context())
        if wait >= 0 and True in self.idle and not self.jobs.qsize() and not _cancelling():
            claim = job.claim = threading.Lock()
            finished = job.finished = threading.Lock()
            finished.acquire()
            self.jobs.put(job)
            if finished.acquire(timeout=wait) or not claim.acquire(blocking=False):
                self.waited += 1  # finished (or the worker claimed it as the wait ended)
                return job
            self.waited_past += 1
            job.future = self.loop.create_future()  # before the drain can see the job
        else:
            job.future = self.loop.create_future()
            self.jobs.put(job)
        if self.workers == 0:
            self._start_worker()
        elif self.watch is None:
            self.taken_at_check = -1
            self.watch = self.loop.call_later(STALL_S, self._check)
        return job

    def _check(self) -> None:
        """While calls wait: if no worker took one since the last check, start another."""
        self.watch = None
        if self.closed or self.jobs.qsize() == 0:
            return
        taken = sum(self.taken)
        # every worker inside the call it was in at the last check; a worker that has not
        # taken a call for want of the CPU or the GIL (a loaded machine) is no reason
        stuck = taken == self.taken_at_check and sum(self.calling) >= self.workers
        if stuck and self.workers < MAX_WORKERS:
            self._start_worker()
        self.taken_at_check = taken
        self.watch = self.loop.call_later(STALL_S, self._check)

    def _start_worker(self) -> None:
        with self.lock:
            self.workers += 1
            slot = len(self.taken)
            self.taken.append(0)
            self.calling.append(False)
            self.idle.append(False)
        self.started_total += 1
        host = self.loop.create_task(self._host(slot), context=contextvars.Context())
        self.hosts.add(host)
        host.add_done_callback(self._host_done)

    async def _host(self, slot: int) -> None:
        await anyio.to_thread.run_sync(
            self._work, slot, abandon_on_cancel=True, limiter=self.limiter
        )

    def _host_done(self, host: asyncio.Task[None]) -> None:
        """A worker's host task ended: if it was cancelled (the loop is shutting down), the
        worker is told to stop, and calls from now on go to a new pool (should the loop go
        on)."""
        self.hosts.discard(host)
        if host.cancelled() or host.exception() is not None:
            self.closed = True
            self.jobs.put(None)
            if _pools.get(self.loop) is self:
                del _pools[self.loop]
            if _last[1] is self:
                _last[0] = _last[1] = None

    def _work(self, slot: int) -> None:
        """A worker's life: take calls until told to stop or idle too long (not the last)."""
        get, taken, calling, idle, done = (
            self.jobs.get,
            self.taken,
            self.calling,
            self.idle,
            self.done,
        )
        idle_s = 0.0
        while True:
            idle[slot] = True
            try:
                job = get(timeout=POLL_S)
            except Empty:
                idle_s += POLL_S
                with self.lock:
                    # a loop closed without cancelling its tasks leaves no one to stop us
                    if self.loop.is_closed() or (idle_s >= IDLE_S and self.workers > 1):
                        self.workers -= 1
                        idle[slot] = False
                        return
                continue
            idle[slot] = False
            idle_s = 0.0
            if job is None:
                with self.lock:
                    self.workers -= 1
                return
            taken[slot] += 1
            future = job.future
            if future is not None and future.done():  # abandoned before it started: not run
                continue
            del future
            calling[slot] = True
            try:
                job.result = job.context.run(_call, job.fn, job.args)
            except BaseException as exc:
                job.error = exc
            calling[slot] = False
            claim = job.claim
            if claim is not None and claim.acquire(blocking=False):
                assert job.finished is not None
                idle[slot] = True  # about to take the next call: the loop may wait for it
                job.finished.release()  # the loop thread waits for it: it takes the outcome
                del job, claim
                continue
            done.append(job)
            del job, claim
            if not self.drain_pending:
                self.drain_pending = True
                try:
                    self.loop.call_soon_threadsafe(self._drain)
                except RuntimeError:  # the loop is closed: nobody waits any more
                    if not self.loop.is_closed():
                        raise

    def _drain(self) -> None:
        """On the loop: hand every finished call's result to its waiting run."""
        self.drain_pending = False
        done = self.done
        while done:
            job = done.popleft()
            future = job.future
            if future is None or future.done():  # cancelled meanwhile (timeout, cancelled run)
                continue
            self.drained += 1
            error = job.error
            if error is None:
                future.set_result(job.result)
            elif isinstance(error, StopIteration):  # a future cannot carry it
                future.set_exception(_wrapped_stop(error))
            else:
                future.set_exception(error)
            del job, future, error


def _call(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    if _library_cvar is not None:
        _library_cvar.set(None)
    return fn(*args)


# A pool refers to its loop, so this is not a weak mapping: a pool leaves it when its loop
# shuts down (the host tasks cancelled, as asyncio.run and anyio.run do).
_pools: dict[asyncio.AbstractEventLoop, _Pool] = {}
_last: list[Any] = [None, None]  # the last (loop, pool) used: skips the dict lookup


def pool_of(loop: asyncio.AbstractEventLoop) -> _Pool:
    """The pool of ``loop`` (created on first use)."""
    if _last[0] is loop:
        pool: _Pool = _last[1]
        if not pool.closed:
            return pool
    found = _pools.get(loop)
    if found is None or found.closed:
        found = _pools[loop] = _Pool(loop)
    _last[0], _last[1] = loop, found
    return found


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _expire(future: asyncio.Future[Any], time_limit: float) -> None:
    if not future.done():
        future.set_exception(TimeoutError(f"the call took longer than {time_limit:g} s"))


async def run_sync_timed(fn: Callable[..., Any], args: tuple[Any, ...], time_limit: float) -> Any:
    """:func:`run_sync` with a time limit: after ``time_limit`` seconds the call is abandoned
    and :class:`TimeoutError` raised. The same as ``anyio.fail_after(time_limit)`` around
    :func:`run_sync` for the caller, at the cost of one loop timer instead of a cancel scope
    (and no cancellation of the caller's task: only its wait ends). The loop thread waits for
    the call as :func:`run_sync` does, up to :data:`SYNC_WAIT_S` or ``time_limit`` if less."""
    loop = _running_loop()
    if loop is None:  # trio (or another backend)
        with anyio.fail_after(time_limit):
            return await anyio.to_thread.run_sync(fn, *args, abandon_on_cancel=True)
    started = loop.time()
    job = pool_of(loop).submit(fn, args, min(SYNC_WAIT_S, time_limit))
    future = job.future
    if future is None:
        return job.outcome()
    del job
    timer = loop.call_at(started + time_limit, _expire, future, time_limit)
    try:
        return await future
    finally:
        timer.cancel()


async def run_sync(fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn(*args)`` in a worker thread and return (or raise) what it did.

    On asyncio, when a worker is idle, the loop thread waits for the call up to
    :data:`SYNC_WAIT_S`; a call done by then returns without the caller pausing (no await
    suspends it: its run goes on in the same loop step, as an inline call would, while the
    function still ran in the worker). A longer call is waited for as any other: the loop is
    held at most :data:`SYNC_WAIT_S` per call whatever the function does (one that blocks, or
    waits for the loop through ``anyio.from_thread``, goes on after it).

    Cancelling the caller abandons the call: the caller gets the cancellation at once, the
    function (if it started) runs on, and its result is dropped."""
    loop = _running_loop()
    if loop is None:  # trio (or another backend)
        return await anyio.to_thread.run_sync(fn, *args, abandon_on_cancel=True)
    job = pool_of(loop).submit(fn, args, SYNC_WAIT_S)
    future = job.future
    if future is None:
        return job.outcome()
    del job
    return await future
