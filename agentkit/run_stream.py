"""``Agent.stream``: the events of one run, as an async iterator the caller may leave at any time.

The run goes in a background task that the caller's task does not own (an asyncio task, or a
trio system task), so no cancel scope or task group is ever held across a ``yield`` in the
caller's task. Leaving early in any way closes the episode as ``cancelled`` before control
returns (or, for a plain ``break``, as soon as the iterator is dropped):

- ``aclose()`` or ``async with``: cancels the run and waits (shielded) until its record is closed;
- the caller is cancelled while it waits for an event (``move_on_after``, task cancellation): the
  same, then the caller's own cancellation goes on;
- ``break`` out of ``async for``: when the iterator is dropped the run is cancelled, and
  ``Agent.aclose()`` waits for it.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import suppress
from typing import Any, Self

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from agentkit.closing import AsyncCloseable
from agentkit.events import FinalEvent, RunEvent
from agentkit.result import RunResult

RunFn = Callable[[Callable[[RunEvent], Awaitable[None]]], Awaitable[RunResult[Any]]]


class _Background:
    """One run in a task of its own: cancel it, wait for it; it never raises into anyone."""

    def __init__(self, run: RunFn, send: MemoryObjectSendStream[RunEvent]) -> None:
        self._run = run
        self._send = send
        self.scope = anyio.CancelScope()
        self.done = anyio.Event()
        self.error: BaseException | None = None

    async def main(self) -> None:
        try:
            with self.scope:
                async with self._send:
                    result = await self._run(self._send.send)
                    await self._send.send(FinalEvent(result=result))
        except anyio.get_cancelled_exc_class():
            pass  # our own scope, or the event loop shutting down: the record is closed
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass  # the reader went away
        except Exception as exc:  # the run guards itself; keep a trio system task from crashing
            self.error = exc
        finally:
            self.done.set()

    async def stop(self) -> None:
        """Cancel the run and wait until its record is closed."""
        self.scope.cancel()
        with anyio.CancelScope(shield=True):
            await self.done.wait()


def _spawn(main: Callable[[], Coroutine[Any, Any, None]], keep: set[Any]) -> None:
    """Start ``main`` in a task no caller owns (strongly referenced from ``keep``)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is not None:
        task = loop.create_task(main())
        keep.add(task)
        task.add_done_callback(keep.discard)
        return
    import trio  # only reached under trio, where it is already imported

    trio.lowlevel.spawn_system_task(main, context=contextvars.copy_context())


class RunStream(AsyncCloseable):
    """Events of one run; the last is :class:`~agentkit.events.FinalEvent`.

    Use it with ``async for``; ``aclose()`` (or ``async with``) ends the run early and waits
    until its episode is closed as ``cancelled``.
    """

    def __init__(self, run: RunFn, registry: set[_Background], tasks: set[Any]) -> None:
        self._run = run
        self._registry = registry
        self._tasks = tasks
        self._receive: MemoryObjectReceiveStream[RunEvent] | None = None
        self._background: _Background | None = None
        self._finished = False

    def _start(self) -> MemoryObjectReceiveStream[RunEvent]:
        send, receive = anyio.create_memory_object_stream[RunEvent](math.inf)
        background = _Background(self._run, send)
        registry = self._registry
        registry.add(background)

        async def main() -> None:
            try:
                await background.main()
            finally:
                registry.discard(background)

        self._background, self._receive = background, receive
        _spawn(main, self._tasks)
        return receive

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> RunEvent:
        if self._finished:
            raise StopAsyncIteration
        receive = self._receive or self._start()
        try:
            event = await receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            self._finished = True
            raise StopAsyncIteration from None
        except BaseException:
            # the caller was cancelled while waiting: close the run first, then let it go on
            await self.aclose()
            raise
        if isinstance(event, FinalEvent):
            self._finished = True
            receive.close()
        return event

    async def aclose(self) -> None:
        """Stop the run (if still going) and wait until its episode is closed in the record."""
        self._finished = True
        # cancel before closing the reader, so the run ends ``cancelled`` at its next step
        # instead of failing on an event it can no longer deliver
        if self._background is not None:
            self._background.scope.cancel()
        if self._receive is not None:
            self._receive.close()
        if self._background is not None:
            await self._background.stop()

    def __del__(self) -> None:
        # ``break`` out of ``async for`` drops the iterator without closing it: stop the run.
        background = self._background
        with suppress(Exception):  # never raise from a finaliser (the loop may be gone)
            if background is not None and not background.done.is_set():
                background.scope.cancel()
            if self._receive is not None:
                self._receive.close()


async def stop_all(registry: set[_Background]) -> None:
    """Cancel every run still going in ``registry`` and wait until each record is closed."""
    for background in list(registry):
        await background.stop()
