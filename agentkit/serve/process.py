"""Run an SGLang server as a managed child process.

The server starts in its own process group (SGLang forks scheduler and detokenizer processes),
its log is streamed line by line, readiness is polled over HTTP, and on exit, error or
cancellation the whole group gets SIGTERM, then SIGKILL after a grace period.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections import deque
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Protocol

import anyio
import anyio.abc
import httpx

from .config import ServeConfig

LogSink = Callable[[str], None]

READY_PATHS = ServeConfig.ready_paths


class Launchable(Protocol):
    """What a managed server process is started from: an SGLang server or its router."""

    @property
    def ready_paths(self) -> tuple[str, ...]: ...

    @property
    def base_url(self) -> str: ...

    def command(self) -> list[str]: ...


class SGLangServerError(RuntimeError):
    """The server failed to start or died; carries the last lines of its log."""

    def __init__(self, message: str, *, returncode: int | None, log_tail: list[str]) -> None:
        tail = "\n".join(f"  | {line}" for line in log_tail) or "  | (no output)"
        super().__init__(f"{message}\nlast server log lines:\n{tail}")
        self.returncode = returncode
        self.log_tail = log_tail


def _stderr_sink(line: str) -> None:
    print(f"[sglang] {line}", file=sys.stderr, flush=True)


class SGLangServer:
    """``async with SGLangServer(ServeConfig.for_model("glm-4.5-air")) as server:``

    Inside the block the server answers at ``server.base_url``. ``log`` receives every line the
    server prints (stderr by default; pass ``lambda line: None`` to silence it).
    """

    def __init__(
        self,
        config: Launchable,
        *,
        ready_timeout: float = 1800.0,
        poll_interval: float = 0.5,
        stop_timeout: float = 15.0,
        log: LogSink | None = _stderr_sink,
        env: Mapping[str, str] | None = None,
        tail_lines: int = 40,
    ) -> None:
        self.config = config
        self.ready_timeout = ready_timeout
        self.poll_interval = poll_interval
        self.stop_timeout = stop_timeout
        self._log = log
        self._env = dict(env) if env is not None else None
        self._tail: deque[str] = deque(maxlen=tail_lines)
        self._process: anyio.abc.Process | None = None
        self._tasks: anyio.abc.TaskGroup | None = None
        self._stopping = False
        self._exited = anyio.Event()
        self.ready_path: str | None = None

    # -- public state -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return self.config.base_url

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def returncode(self) -> int | None:
        return self._process.returncode if self._process is not None else None

    @property
    def log_tail(self) -> list[str]:
        return list(self._tail)

    async def wait_exited(self) -> None:
        """Return once the server process has exited (for whatever reason)."""
        await self._exited.wait()

    def check(self) -> None:
        """Raise :class:`SGLangServerError` if the server has exited."""
        if self._exited.is_set() and not self._stopping:
            raise SGLangServerError(
                f"SGLang server exited with code {self.returncode}",
                returncode=self.returncode,
                log_tail=self.log_tail,
            )

    # -- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> SGLangServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        died = self._exited.is_set() and not self._stopping
        await self.stop()
        if died and exc is None:
            raise SGLangServerError(
                f"SGLang server exited with code {self.returncode} while in use",
                returncode=self.returncode,
                log_tail=self.log_tail,
            )

    async def start(self) -> None:
        """Launch the process and wait until it serves (stopping it again if it never does)."""
        await self.launch()
        try:
            await self.wait_ready()
        except BaseException:
            await self.stop()
            raise

    async def launch(self) -> None:
        """Spawn the process and start pumping its log; :meth:`wait_ready` waits for it.

        ``launch`` and :meth:`stop` must run in the same task (they enter and leave the log
        pump's task group); :meth:`wait_ready` may run in any task, so several servers can load
        at once.
        """
        if self._process is not None:
            raise RuntimeError("this SGLangServer was already started")
        env = {**os.environ, **(self._env or {}), "PYTHONUNBUFFERED": "1"}
        self._process = await anyio.open_process(
            self.config.command(),
            stdin=None,
            stdout=-1,  # subprocess.PIPE
            stderr=-2,  # subprocess.STDOUT: one interleaved log
            env=env,
            start_new_session=True,
        )
        self._tasks = anyio.create_task_group()
        await self._tasks.__aenter__()
        self._tasks.start_soon(self._pump_log)
        self._tasks.start_soon(self._watch_exit)

    async def stop(self) -> None:
        """Stop the whole process group: SIGTERM, then SIGKILL after ``stop_timeout``."""
        process = self._process
        if process is None or self._stopping:
            return
        self._stopping = True
        with anyio.CancelScope(shield=True):
            if process.returncode is None:
                _signal_group(process.pid, signal.SIGTERM)
                with anyio.move_on_after(self.stop_timeout):
                    await process.wait()
            # Children may outlive the leader (or ignore SIGTERM): kill what is left of the group.
            _signal_group(process.pid, signal.SIGKILL)
            if process.returncode is None:
                await process.wait()
        # The log pump and exit watcher end with the process; the task group was entered in
        # start() (same task), so it is left here, outside the shielded scope.
        if self._tasks is not None:
            tasks, self._tasks = self._tasks, None
            tasks.cancel_scope.cancel()
            await tasks.__aexit__(None, None, None)
        with anyio.CancelScope(shield=True):
            await process.aclose()

    # -- internals ----------------------------------------------------------------------------

    async def _pump_log(self) -> None:
        assert self._process is not None
        assert self._process.stdout is not None
        pending = b""
        try:
            async for chunk in self._process.stdout:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for raw in lines:
                    self._emit(raw)
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass
        if pending:
            self._emit(pending)

    async def _watch_exit(self) -> None:
        assert self._process is not None
        await self._process.wait()
        # Let the log pump drain what the server printed last before anyone reads the tail.
        await anyio.sleep(0.05)
        self._exited.set()

    def _emit(self, raw: bytes) -> None:
        line = raw.decode("utf-8", errors="replace").rstrip("\r")
        self._tail.append(line)
        if self._log is not None:
            self._log(line)

    async def wait_ready(self) -> None:
        """Poll the readiness endpoints until one answers 200; raise if the process dies first."""
        paths = list(self.config.ready_paths)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10.0) as client:
            with anyio.move_on_after(self.ready_timeout) as scope:
                while True:
                    if self._exited.is_set():
                        raise SGLangServerError(
                            f"SGLang server exited with code {self.returncode} before it was ready",
                            returncode=self.returncode,
                            log_tail=self.log_tail,
                        )
                    for path in list(paths):
                        try:
                            response = await client.get(path)
                        except httpx.HTTPError:
                            break  # not listening yet
                        if response.status_code == 200:
                            self.ready_path = path
                            return
                        if response.status_code == 404 and len(paths) > 1:
                            paths.remove(path)  # this server has no such endpoint
                            continue
                        break  # 503 while loading: ask again later
                    with anyio.move_on_after(self.poll_interval):
                        await self._exited.wait()
        if scope.cancelled_caught:
            raise SGLangServerError(
                f"SGLang server not ready after {self.ready_timeout:g} s",
                returncode=self.returncode,
                log_tail=self.log_tail,
            )


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
