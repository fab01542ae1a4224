"""Where a sync tool's function runs: in a worker thread, or inline on the event loop.

A worker thread keeps a blocking function from freezing the loop, but each call pays a thread
hop (hand-off, wake-up, GIL hand-back) that costs more client CPU than a trivial tool itself.
The rule (``inline`` on :func:`agentkit.tool`):

- ``inline=False`` (the default): every call runs in a worker thread, through
  :func:`agentkit.worker_threads.run_sync` (on asyncio a few long-lived workers per loop fed
  by a queue, results handed back in batches; under trio ``anyio.to_thread.run_sync``).
  On asyncio these threads are not bounded by anyio's default thread limiter (a
  ``total_tokens`` set on it does not limit sync tools); the pool has its own bound of
  :data:`agentkit.worker_threads.MAX_WORKERS` threads per loop, on top of anyio's.
  Nothing a sync function does can freeze the loop; cancelling the caller (the tool's
  timeout) abandons the call; the call runs in a copy of the caller's context.
- ``inline=True``: every call runs on the event loop thread. Use it only for functions that
  never block (pure computation on small inputs, dict lookups); the tool's timeout cannot
  interrupt such a call, and while it runs no other run makes progress.
- ``inline="auto"`` (or ``None``), adaptive: calls run in worker threads until a streak of calls in a row
  have each finished within :data:`INLINE_BOUND_S` (:data:`FAST_STREAK` calls at first); then
  they run inline. Every call is judged, in its thread or inline. A call that took longer
  than the bound and meanwhile waited (a voluntary context switch: sleep, I/O, a lock) or
  spent more than the bound on the CPU (garbage collection not counted) is slow; one that was
  only preempted by the OS or paused by the collector counts neither way. A slow inline call
  ends the inline phase at once and doubles the streak the tool needs next time (unless the
  tool's own worker threads were running then, whose hold on the GIL explains the wait). A
  slow threaded call restarts the streak when it ran alone.

  The bound is on how often, not how long: a tool whose calls are never quick never runs
  inline; one that is quick and then blocks holds the loop for that whole call (a call that
  never returns freezes every run of the process), then needs twice as long a streak of quick
  calls before it can do it again (3, 6, 12, ... calls). Choose it only for a function that
  cannot block indefinitely.

A function that calls back into the event loop from its thread (``anyio.from_thread``,
``asyncio.run_coroutine_threadsafe``) or needs a thread of its own must keep ``inline=False``.
On asyncio the worker is an AnyIO worker thread, so ``anyio.from_thread.run`` works; what it
starts belongs to the worker pool, not to the run (see :mod:`agentkit.worker_threads`).
Inline calls run in a copy of the caller's context, as threaded ones do, so a tool that sets a
context variable does not change the run's.
"""

from __future__ import annotations

import contextvars
import gc
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from agentkit import worker_threads

try:
    import resource

    _THREAD_USAGE: int | None = resource.RUSAGE_THREAD  # Linux
except (ImportError, AttributeError):  # pragma: no cover - elsewhere: wall time alone
    _THREAD_USAGE = None

Inline = bool | Literal["auto"] | None  # None: the same as "auto" (its first spelling)
INLINE_BOUND_S = 0.001
FAST_STREAK = 3

_collections = [0]  # garbage collections started in this process since the first tool


def _count_collection(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _collections[0] += 1


class _Timing:
    """One call's wall and CPU time, waits, and the collections that ran meanwhile."""

    __slots__ = ("collections", "cpu", "usage", "wall")

    def __init__(self) -> None:
        self.collections = _collections[0]
        self.usage = resource.getrusage(_THREAD_USAGE) if _THREAD_USAGE is not None else None
        self.cpu = time.thread_time()
        self.wall = time.perf_counter()

    def verdict(self) -> bool | None:
        """True: quick; False: slow (it waited, or worked, past the bound); None: unsure."""
        wall = time.perf_counter() - self.wall
        if wall <= INLINE_BOUND_S:
            return True
        cpu = time.thread_time() - self.cpu
        if cpu > INLINE_BOUND_S and _collections[0] == self.collections:
            return False  # it worked that long itself
        if self.usage is None or _THREAD_USAGE is None:
            return False
        waited = resource.getrusage(_THREAD_USAGE).ru_nvcsw > self.usage.ru_nvcsw
        return False if waited else None  # else preempted, or paused by the collector


class SyncCaller:
    """Calls one sync function by the rule above; one per tool, shared by all its runs."""

    def __init__(self, fn: Callable[..., Any], inline: Inline = False) -> None:
        if inline is None:
            inline = "auto"
        if not (isinstance(inline, bool) or inline == "auto"):
            raise TypeError('inline must be False (worker threads), True or "auto"')
        self.fn = fn
        self.inline = inline
        self.streak = 0  # quick calls in a row
        self.strikes = 0  # slow inline calls so far: each doubles the streak needed
        self.in_threads = 0  # calls of this tool running in worker threads now
        self.calls_inline = 0
        self.calls_threaded = 0
        if inline == "auto" and _count_collection not in gc.callbacks:
            gc.callbacks.append(_count_collection)

    @property
    def streak_needed(self) -> int:
        return FAST_STREAK << min(self.strikes, 40)

    @property
    def runs_inline(self) -> bool:
        """Whether the next call runs on the event loop thread."""
        if isinstance(self.inline, bool):
            return self.inline
        return self.streak >= self.streak_needed

    async def __call__(self, kwargs: dict[str, Any]) -> Any:
        if self.runs_inline:
            return self.call_inline(kwargs)
        return await self._threaded(kwargs)

    def call_inline(self, kwargs: dict[str, Any]) -> Any:
        """Run the function now, on this thread (the caller checked :attr:`runs_inline`)."""
        self.calls_inline += 1
        if self.inline is True:
            return contextvars.copy_context().run(self.fn, **kwargs)
        timing = _Timing()
        try:
            return contextvars.copy_context().run(self.fn, **kwargs)
        finally:
            if timing.verdict() is False:
                self.streak = 0
                if self.in_threads == 0:
                    self.strikes += 1

    def call_threaded(self, kwargs: dict[str, Any], time_limit: float | None) -> Awaitable[Any]:
        """Start the function in a worker thread (the caller checked :attr:`runs_inline` is
        false) and return what to await for its result, abandoning it with
        :class:`TimeoutError` after ``time_limit`` seconds: the same outcome as
        ``anyio.fail_after(time_limit)`` around ``await self(kwargs)``, without a cancel
        scope. For ``inline=False`` the call is queued at once and the
        awaitable is its future (see :func:`agentkit.worker_threads.start_call`)."""
        if self.inline is False:
            self.calls_threaded += 1
            return worker_threads.start_call(self.fn, kwargs, time_limit)
        return self._threaded(kwargs, time_limit)

    async def _threaded(self, kwargs: dict[str, Any], time_limit: float | None = None) -> Any:
        fn = self.fn
        self.calls_threaded += 1
        if self.inline is False:
            return await worker_threads.start_call(fn, kwargs, time_limit)
        verdicts: list[bool | None] = []

        def timed() -> Any:
            timing = _Timing()
            try:
                return fn(**kwargs)
            finally:
                verdicts.append(timing.verdict())

        self.in_threads += 1
        try:
            return await worker_threads.start_call(timed, {}, time_limit)
        finally:
            alone = self.in_threads == 1
            self.in_threads -= 1
            if self.inline == "auto":
                # an abandoned thread (timeout, cancelled run) has no verdict yet: slow
                quick = verdicts[0] if verdicts else False
                if quick:
                    self.streak += 1
                elif quick is False and (alone or not verdicts):
                    self.streak = 0
