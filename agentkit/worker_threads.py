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
- A call's time limit (:func:`start_call`, :func:`run_sync_timed`) is kept by the pool: the
  calls of one limit wait in one deadline queue with one loop timer (:class:`_Deadlines`),
  not a timer per call (a timer per call is created, and cancelled, on the loop each time).
- Callers queue calls with :func:`start_call` (the future itself is awaited, no coroutine
  around it) or :func:`run_sync` / :func:`run_sync_timed`.
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
- The threads are not anyio's default ones: ``anyio.to_thread.current_default_thread_limiter()``
  does not bound them (a ``total_tokens`` set there has no effect on sync tools). The pool's
  own bound is :data:`MAX_WORKERS` threads per loop, on top of whatever anyio's limiter lets
  other code start.
- When the loop shuts down (its tasks cancelled, as ``asyncio.run`` does; one cancelled host
  is enough), all its workers are told to stop, and calls still queued fail with
  :class:`RuntimeError`; a loop closed without that is noticed by its idle workers within
  :data:`POLL_S` (and by the next lookup that makes a pool), which drop its pool. At
  interpreter exit (a hook that runs before non-daemon threads are joined) every pool is
  stopped, so a loop left open does not keep the process alive. A worker busy with a call
  that never returns stays until it does, as anyio's would (it is not a daemon thread).

Under any other backend (trio) :func:`run_sync` is ``anyio.to_thread.run_sync`` with
``abandon_on_cancel=True``.

Measured and not kept (commits 6f9be95, da4ed1f): the loop thread waiting (up to 0.1-2 ms) for
a call it had just handed to an idle worker, so that a quick call returns without its run
pausing. It cost more client CPU than it saved at every concurrency but a single run (the
agentkit contender of bench_runtime, with and without it in turn in one process, 0 ms model
latency: N=100 0.32 ms/step against 0.29, N=1000 0.40 against 0.35): each call woke both
threads (about 2.5 voluntary context switches per step instead of 0.2), where the queue lets
one worker wake-up serve a batch of calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from queue import Empty, SimpleQueue
from typing import Any

import anyio
import anyio.to_thread

_library_cvar: contextvars.ContextVar[str | None] | None
try:  # anyio's worker threads hide the loop's library from sniffio; so do these
    from sniffio import current_async_library_cvar as _library_cvar
except ImportError:  # pragma: no cover - sniffio comes with anyio today
    _library_cvar = None

STALL_S = 0.01  # calls queued and none taken this long: another worker starts
IDLE_S = 10.0  # a worker beyond the first stops after this long without a call
POLL_S = 1.0  # how often an idle worker checks whether it is to stop
MAX_WORKERS = 40  # as anyio's default thread limiter


_NO_KWARGS: dict[str, Any] = {}  # never changed: ``**`` unpacks a copy


class _Job:
    """One call waiting for, or running in, a worker."""

    __slots__ = ("args", "context", "fn", "future", "kwargs")

    def __init__(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        context: contextvars.Context,
        future: asyncio.Future[Any],
    ) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.context = context
        self.future = future


_Done = tuple["asyncio.Future[Any]", Any, BaseException | None]
MAX_LIMITS = 64  # distinct time limits with a shared deadline queue; others get a timer each
COMPACT_AT = 256  # answered calls behind a running one are dropped from here on


class _Deadlines:
    """The calls of one time limit, in the order they were queued, and one loop timer.

    Calls of one limit queued one after another have deadlines in the same order, so one
    timer, set for the oldest unanswered call, serves them all: when it fires, every call past
    its deadline gets :class:`TimeoutError` and the timer is set for the next one. An answered
    call leaves the front of the queue when the pool hands out results (its future is then
    done), so the queue holds about the calls in flight. The timer is never late: it is set
    for a deadline no later than that of any call behind it."""

    __slots__ = ("compact_at", "loop", "queue", "seconds", "timer")

    def __init__(self, loop: asyncio.AbstractEventLoop, seconds: float) -> None:
        self.loop = loop
        self.seconds = seconds
        self.queue: deque[tuple[float, asyncio.Future[Any]]] = deque()
        self.timer: asyncio.TimerHandle | None = None
        self.compact_at = COMPACT_AT

    def add(self, future: asyncio.Future[Any]) -> None:
        deadline = self.loop.time() + self.seconds
        self.queue.append((deadline, future))
        if self.timer is None:
            self.timer = self.loop.call_at(deadline, self.expire)

    def prune(self) -> None:
        """Drop the answered (or abandoned) calls at the front; behind a call that is still
        running (a slow one), drop the answered ones once they are many, so they do not keep
        their results."""
        queue = self.queue
        while queue and queue[0][1].done():
            queue.popleft()
        if len(queue) >= self.compact_at:
            self.queue = queue = deque(item for item in queue if not item[1].done())
            self.compact_at = max(COMPACT_AT, 2 * len(queue))

    def expire(self) -> None:
        self.timer = None
        now = self.loop.time()
        queue = self.queue
        while queue:
            deadline, future = queue[0]
            if not future.done():
                if deadline > now:
                    break
                _expire(future, self.seconds)
            queue.popleft()
        if queue:
            self.timer = self.loop.call_at(queue[0][0], self.expire)


class _Pool:
    """The workers of one asyncio event loop, their queue of calls and their results."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.jobs: SimpleQueue[_Job | None] = SimpleQueue()
        self.done: deque[_Done] = deque()
        self.drain_pending = False
        self.lock = threading.Lock()  # guards workers (start/stop only, never per call)
        self.workers = 0
        self.taken = [0]  # calls taken by workers so far (one slot per worker; summed)
        self.calling = [False]  # per slot: that worker is inside a call now
        self.taken_at_check = -1
        self.watch: asyncio.TimerHandle | None = None
        self.hosts: set[asyncio.Task[None]] = set()
        self.limiter = anyio.CapacityLimiter(MAX_WORKERS)
        self.deadlines: dict[float, _Deadlines] = {}  # the time limits' deadline queues
        self.closed = False  # a host was cancelled: the loop is shutting down
        self.started_total = 0  # workers ever started (for tests and benchmarks)

    def submit(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any] = _NO_KWARGS,
        time_limit: float | None = None,
    ) -> asyncio.Future[Any]:
        """Queue ``fn(*args, **kwargs)``; the future gets its outcome, or ``TimeoutError``
        after ``time_limit`` seconds (through the limit's :class:`_Deadlines`)."""
        loop = self.loop
        future: asyncio.Future[Any] = loop.create_future()
        if time_limit is not None:
            deadlines = self.deadlines.get(time_limit)
            if deadlines is None and len(self.deadlines) < MAX_LIMITS:
                deadlines = self.deadlines[time_limit] = _Deadlines(loop, time_limit)
            if deadlines is not None:
                deadlines.add(future)
            else:
                timer = loop.call_later(time_limit, _expire, future, time_limit)
                future.add_done_callback(lambda _: timer.cancel())
        self.jobs.put(_Job(fn, args, kwargs, contextvars.copy_context(), future))
        if self.workers == 0:
            self._start_worker()
        elif self.watch is None:
            self.taken_at_check = -1
            self.watch = self.loop.call_later(STALL_S, self._check)
        return future

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
            _with_workers.add(self)
            slot = len(self.taken)
            self.taken.append(0)
            self.calling.append(False)
        self.started_total += 1
        host = self.loop.create_task(self._host(slot), context=contextvars.Context())
        self.hosts.add(host)
        host.add_done_callback(self._host_done)

    async def _host(self, slot: int) -> None:
        await anyio.to_thread.run_sync(
            self._work, slot, abandon_on_cancel=True, limiter=self.limiter
        )

    def _host_done(self, host: asyncio.Task[None]) -> None:
        """A worker's host task ended: if it was cancelled (the loop is shutting down), every
        worker is told to stop, and calls from now on go to a new pool (should the loop go
        on)."""
        self.hosts.discard(host)
        if host.cancelled() or host.exception() is not None:
            self.stop()

    def stop(self) -> None:
        """Tell every worker to stop (one ``None`` in the queue; each worker that takes it puts
        it back for the next) and let calls from now on go to a new pool."""
        self.closed = True
        self.jobs.put(None)
        _forget(self)

    def _retire(self) -> None:
        """A worker leaves. The last one of a stopped pool fails the calls still queued (a
        loop that goes on after one host was cancelled must not wait for them forever)."""
        with self.lock:
            self.workers -= 1
            last = self.workers == 0
            if last:
                _with_workers.discard(self)
        if not (last and self.closed):
            return
        while True:
            try:
                job = self.jobs.get_nowait()
            except Empty:
                break
            if job is not None:
                error = RuntimeError("the worker pool stopped before the call started")
                self.done.append((job.future, None, error))
        if self.done:
            try:
                self.loop.call_soon_threadsafe(self._drain)
            except RuntimeError:  # the loop is closed: nobody waits any more
                if not self.loop.is_closed():
                    raise

    def _work(self, slot: int) -> None:
        """A worker's life: take calls until told to stop or idle too long (not the last)."""
        get, taken, calling, done = self.jobs.get, self.taken, self.calling, self.done
        idle = 0.0
        while True:
            try:
                job = get(timeout=POLL_S)
            except Empty:
                idle += POLL_S
                if self.loop.is_closed():
                    # a loop closed without cancelling its tasks leaves no one to stop us
                    self.closed = True
                    _forget(self)
                    self._retire()
                    return
                with self.lock:
                    closed = self.closed
                    extra = not closed and idle >= IDLE_S and self.workers > 1
                    if extra:  # idle too long and not the last: leaves
                        self.workers -= 1
                if extra:
                    return
                if closed:
                    self._retire()
                    return
                continue
            idle = 0.0
            if job is None:
                self.jobs.put(None)  # the next worker stops too
                self._retire()
                return
            taken[slot] += 1
            future = job.future
            if future.done():  # abandoned (cancelled, timed out) before it started: not run
                continue
            result: Any = None
            error: BaseException | None = None
            calling[slot] = True
            try:
                result = job.context.run(_call, job.fn, job.args, job.kwargs)
            except BaseException as exc:
                error = exc
            calling[slot] = False
            done.append((future, result, error))
            del job, result, error
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
            future, result, error = done.popleft()
            if future.done():  # cancelled meanwhile (timeout, cancelled run): abandoned
                continue
            if error is None:
                future.set_result(result)
            elif isinstance(error, StopIteration):  # a future cannot carry it
                wrapped = RuntimeError("the sync function raised StopIteration")
                wrapped.__cause__ = error
                future.set_exception(wrapped)
            else:
                future.set_exception(error)
        for deadlines in self.deadlines.values():
            deadlines.prune()


def _call(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if _library_cvar is not None:
        _library_cvar.set(None)
    return fn(*args, **kwargs)


# A pool refers to its loop, so this is not a weak mapping: a pool leaves it when its loop
# shuts down (the host tasks cancelled, as asyncio.run and anyio.run do) or when a worker or
# a lookup finds its loop closed.
_pools: dict[asyncio.AbstractEventLoop, _Pool] = {}
# The last (loop, pool) used, which skips the dict lookup: one tuple, rebound in one store, so
# a thread never sees one thread's loop paired with another's pool.
_last: tuple[asyncio.AbstractEventLoop | None, _Pool | None] = (None, None)
_with_workers: set[_Pool] = set()  # every pool with a live worker (what the exit hook stops)


def _forget(pool: _Pool) -> None:
    """Take ``pool`` out of the lookups (calls from now on get a new pool)."""
    global _last
    if _pools.get(pool.loop) is pool:
        _pools.pop(pool.loop, None)
    if _last[1] is pool:
        _last = (None, None)


def pool_of(loop: asyncio.AbstractEventLoop) -> _Pool:
    """The pool of ``loop`` (created on first use)."""
    global _last
    last = _last
    if last[0] is loop:
        pool = last[1]
        if pool is not None and not pool.closed:
            return pool
    found = _pools.get(loop)
    if found is None or found.closed:
        for old in [p for p in _pools.values() if p.loop.is_closed()]:  # once per new pool
            old.closed = True
            _forget(old)
        found = _pools[loop] = _Pool(loop)
    _last = (loop, found)
    return found


def _stop_all_at_exit() -> None:
    """At interpreter exit, before non-daemon threads are joined: stop every pool's workers
    (a worker inside a call ends when the call does), so a loop left open does not keep the
    process alive."""
    for pool in list(_with_workers):
        pool.stop()


with contextlib.suppress(RuntimeError):  # raised if imported while the interpreter exits
    threading._register_atexit(_stop_all_at_exit)  # type: ignore[attr-defined]


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _expire(future: asyncio.Future[Any], time_limit: float) -> None:
    if not future.done():
        future.set_exception(TimeoutError(f"the call took longer than {time_limit:g} s"))


def start_call(
    fn: Callable[..., Any], kwargs: dict[str, Any], time_limit: float | None
) -> Awaitable[Any]:
    """``fn(**kwargs)`` in a worker thread, started now: await the result to get what it
    returned (or raised). With ``time_limit`` the wait ends after that many seconds with
    :class:`TimeoutError` and the call is abandoned: for the caller the same as
    ``anyio.fail_after(time_limit)`` around :func:`run_sync`. On asyncio the awaitable is the
    call's future (no coroutine of its own; the limit is a place in the pool's deadline queue
    of that limit, not a cancel scope or a timer per call; the caller's task is not cancelled,
    only its wait ends)."""
    loop = _running_loop()
    if loop is None:  # trio (or another backend)
        return _elsewhere(fn, kwargs, time_limit)
    if time_limit is not None and time_limit <= 0:  # as anyio.fail_after(0): never started
        expired: asyncio.Future[Any] = loop.create_future()
        expired.set_exception(TimeoutError(f"the call took longer than {time_limit:g} s"))
        return expired
    return pool_of(loop).submit(fn, (), kwargs, time_limit)


async def _elsewhere(
    fn: Callable[..., Any], kwargs: dict[str, Any], time_limit: float | None
) -> Any:
    call = functools.partial(fn, **kwargs)
    if time_limit is None:
        return await anyio.to_thread.run_sync(call, abandon_on_cancel=True)
    with anyio.fail_after(time_limit):
        return await anyio.to_thread.run_sync(call, abandon_on_cancel=True)


async def run_sync_timed(fn: Callable[..., Any], args: tuple[Any, ...], time_limit: float) -> Any:
    """:func:`run_sync` with a time limit: after ``time_limit`` seconds the call is abandoned
    and :class:`TimeoutError` raised. The same as ``anyio.fail_after(time_limit)`` around
    :func:`run_sync` for the caller, at the cost of a place in a deadline queue instead of a
    cancel scope (and no cancellation of the caller's task: only its wait ends)."""
    loop = _running_loop()
    if loop is None:  # trio (or another backend)
        with anyio.fail_after(time_limit):
            return await anyio.to_thread.run_sync(fn, *args, abandon_on_cancel=True)
    if time_limit <= 0:  # as anyio.fail_after(0): never started
        raise TimeoutError(f"the call took longer than {time_limit:g} s")
    return await pool_of(loop).submit(fn, args, _NO_KWARGS, time_limit)


async def run_sync(fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn(*args)`` in a worker thread and return (or raise) what it did.

    Cancelling the caller abandons the call: the caller gets the cancellation at once, the
    function (if it started) runs on, and its result is dropped."""
    loop = _running_loop()
    if loop is None:  # trio (or another backend)
        return await anyio.to_thread.run_sync(fn, *args, abandon_on_cancel=True)
    return await pool_of(loop).submit(fn, args)
