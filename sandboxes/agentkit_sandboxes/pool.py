"""``SandboxPool``: N containers started ahead, handed out at once, reset or replaced after use.

Handing out a warm sandbox is a receive from an in-memory stream. Returned sandboxes are reset
in the background and verified (every job process killed; work dir, /tmp, /dev/shm, /dev/mqueue
and SysV IPC emptied); one whose reset fails or cannot be proven, or that has been handed out
``max_uses`` times, is removed and replaced by a fresh container. On start the pool removes
containers left by dead owner processes (``reap_orphans``); on exit it removes all of its own.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from agentkit.closing import AsyncCloseable

from .config import SandboxConfig
from .docker_sandbox import DockerSandbox, reap_orphans
from .engine import Engine


class SandboxPool(AsyncCloseable):
    """``async with SandboxPool(size=4) as pool: async with pool.sandbox() as sb: ...``"""

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        size: int = 4,
        max_uses: int = 100,
        engine: Engine | None = None,
        reap: bool = True,
    ) -> None:
        if size < 1:
            raise ValueError("pool size must be at least 1")
        self.config = config or SandboxConfig()
        self.size = size
        self.max_uses = max_uses
        self.name = f"pool-{secrets.token_hex(4)}"
        self._own_engine = engine is None
        self.engine = engine or Engine()
        self._reap = reap
        self._all: set[DockerSandbox] = set()
        send, receive = anyio.create_memory_object_stream[DockerSandbox](math.inf)
        self._ready_send: MemoryObjectSendStream[DockerSandbox] = send
        self._ready_receive: MemoryObjectReceiveStream[DockerSandbox] = receive
        self._stack: AsyncExitStack | None = None
        self._tg: TaskGroup | None = None
        self.replaced = 0
        self.reaped = 0

    async def __aenter__(self) -> SandboxPool:
        stack = AsyncExitStack()
        try:
            if self._own_engine:
                await stack.enter_async_context(self.engine)
            if self._reap:
                self.reaped = await reap_orphans(self.engine)
            stack.push_async_callback(self._remove_all)
            self._tg = await stack.enter_async_context(anyio.create_task_group())
            async with anyio.create_task_group() as starters:
                for _ in range(self.size):
                    starters.start_soon(self._add_new)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def aclose(self) -> None:
        """Stop background resets and remove every container of the pool."""
        if self._tg is not None:
            self._tg.cancel_scope.cancel()
        if self._stack is not None:
            stack, self._stack = self._stack, None
            await stack.aclose()

    @property
    def ready(self) -> int:
        """Sandboxes waiting to be handed out."""
        return self._ready_receive.statistics().current_buffer_used

    async def acquire(self) -> DockerSandbox:
        """A ready sandbox (waits when all are in use); ``await sb.close()`` gives it back."""
        if self._tg is None:
            raise RuntimeError("use the pool as 'async with SandboxPool(...) as pool'")
        sandbox = await self._ready_receive.receive()
        sandbox.leases += 1
        sandbox._on_close = self.release
        return sandbox

    async def release(self, sandbox: DockerSandbox) -> None:
        """Give a sandbox back: it is reset (or replaced) in the background."""
        sandbox._on_close = None
        if self._tg is None or sandbox not in self._all:
            await sandbox.destroy()
            self._all.discard(sandbox)
            return
        self._tg.start_soon(self._recycle, sandbox)

    @asynccontextmanager
    async def sandbox(self) -> AsyncIterator[DockerSandbox]:
        sandbox = await self.acquire()
        try:
            yield sandbox
        finally:
            with anyio.CancelScope(shield=True):
                await self.release(sandbox)

    async def _add_new(self) -> None:
        sandbox = await DockerSandbox.create(self.engine, self.config, pool=self.name)
        self._all.add(sandbox)
        await self._ready_send.send(sandbox)

    async def _recycle(self, sandbox: DockerSandbox) -> None:
        healthy = sandbox.leases < self.max_uses and not sandbox.closed and await sandbox.reset()
        if healthy:
            await self._ready_send.send(sandbox)
            return
        self._all.discard(sandbox)
        await sandbox.destroy()
        self.replaced += 1
        await self._add_new()

    async def _remove_all(self) -> None:
        with anyio.CancelScope(shield=True):
            sandboxes, self._all = list(self._all), set()
            async with anyio.create_task_group() as tg:
                for sandbox in sandboxes:
                    tg.start_soon(sandbox.destroy)
