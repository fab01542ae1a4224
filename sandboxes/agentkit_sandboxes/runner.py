"""Host side of the in-container command runner (see ``runner_inside.py``).

One ``docker exec -i`` per container stays open; requests go in on its stdin as JSON lines and
answers come back in Docker's multiplexed stdout frames. A warm command then costs one write and
one read on a unix socket, not a new exec. Several requests may be in flight at once: whoever
waits reads the next line and files it under its id.

Every answer is checked: a line that is not a JSON object with a known id, or a frame stream that
ends, closes the runner with :class:`RunnerGone`; callers turn that into a failed command,
never into an exception of ``exec``.
"""

from __future__ import annotations

import itertools
import json
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

import anyio
from anyio.abc import SocketStream

from .engine import Engine

# the program sent into the container: the helpers it shares with the direct exec path, then it
RUNNER_SOURCE = "\n".join(
    Path(__file__).with_name(name).read_text() for name in ("exec_shared.py", "runner_inside.py")
)
_MAX_LINE = 64 * 1024 * 1024


class RunnerGone(RuntimeError):
    """The runner process or its connection ended, or it broke the protocol."""


class Runner:
    """A connection to one container's runner."""

    def __init__(self, stream: SocketStream, leftover: bytes) -> None:
        self._stream = stream
        self._buffer = bytearray(leftover)
        self._lines = bytearray()
        self._stderr = bytearray()
        self._ids = itertools.count(1)
        self._read_lock = anyio.Lock()
        self._send_lock = anyio.Lock()
        self._waiting: set[int] = set()
        self._replies: dict[int, dict[str, Any]] = {}
        self._abandoned: set[int] = set()
        self.closed = False
        self.reason = ""

    @classmethod
    async def start(
        cls, engine: Engine, container_id: str, *, user: str, env: Mapping[str, str]
    ) -> Runner:
        eid = await engine.exec_create(
            container_id,
            ["python3", "-I", "-u", "-c", RUNNER_SOURCE],
            user=user,
            workdir="/",
            env=env,
            stdin=True,
        )
        stream, leftover = await engine.exec_attach(eid)
        runner = cls(stream, leftover)
        try:
            with anyio.fail_after(20):
                reply = await runner.request({"ping": True})
            if "pong" not in reply:
                raise RunnerGone(f"unexpected answer from the runner: {reply}")
        except BaseException:
            await runner.aclose()
            raise
        return runner

    @property
    def busy(self) -> bool:
        return bool(self._waiting)

    def next_id(self) -> int:
        return next(self._ids)

    def stderr_tail(self) -> str:
        return bytes(self._stderr[-2000:]).decode("utf-8", "replace")

    async def request(self, payload: dict[str, Any], rid: int | None = None) -> dict[str, Any]:
        """Send one request and wait for its answer."""
        rid = self.next_id() if rid is None else rid
        self._waiting.add(rid)
        answered = False
        try:
            await self.send({**payload, "id": rid})
            while rid not in self._replies:
                async with self._read_lock:
                    if rid in self._replies:
                        break
                    if self.closed:
                        raise RunnerGone(self.reason or "runner is closed")
                    self._file(await self._read_line())
            answered = True
            return self._replies.pop(rid)
        finally:
            self._waiting.discard(rid)
            if not answered and self._replies.pop(rid, None) is None:
                self._abandoned.add(rid)  # cancelled: its answer may still come

    def _file(self, line: bytes) -> None:
        try:
            message = json.loads(line)
        except ValueError:
            message = None
        rid = message.get("id") if isinstance(message, dict) else None
        if isinstance(rid, int) and rid in self._abandoned:
            self._abandoned.discard(rid)
            return
        if not isinstance(message, dict) or not isinstance(rid, int) or rid not in self._waiting:
            self._fail(f"the runner broke the protocol: {line[:200]!r}")
        else:
            self._replies[rid] = message

    def _fail(self, reason: str) -> NoReturn:
        self.closed = True
        self.reason = reason
        raise RunnerGone(reason)

    async def send(self, payload: dict[str, Any]) -> None:
        if self.closed:
            raise RunnerGone(self.reason or "runner is closed")
        try:
            async with self._send_lock:
                await self._stream.send((json.dumps(payload) + "\n").encode())
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            self._fail(f"cannot write to the runner: {exc}")

    async def kill(self, rid: int) -> None:
        await self.send({"kill": rid})

    async def aclose(self) -> None:
        self.closed = True
        with anyio.CancelScope(shield=True):
            await self._stream.aclose()

    async def _read_line(self) -> bytes:
        while b"\n" not in self._lines:
            stream, payload = await self._read_frame()
            if stream == 1:
                self._lines += payload
                if len(self._lines) > _MAX_LINE:
                    self._fail("the runner sent an over-long line")
            elif stream == 2:
                self._stderr += payload
                del self._stderr[:-4000]
        index = self._lines.index(b"\n")
        line = bytes(self._lines[:index])
        del self._lines[: index + 1]
        return line

    async def _read_frame(self) -> tuple[int, bytes]:
        """One frame; bytes stay buffered until the frame is whole (safe to cancel)."""
        await self._fill(8)
        size = struct.unpack(">I", self._buffer[4:8])[0]
        await self._fill(8 + size)
        stream = self._buffer[0]
        payload = bytes(self._buffer[8 : 8 + size])
        del self._buffer[: 8 + size]
        return stream, payload

    async def _fill(self, n: int) -> None:
        while len(self._buffer) < n:
            if self.closed:
                raise RunnerGone(self.reason or "runner is closed")
            try:
                chunk = await self._stream.receive()
            except (
                anyio.EndOfStream,
                anyio.BrokenResourceError,
                anyio.ClosedResourceError,
                OSError,
            ) as exc:
                tail = self.stderr_tail().strip()
                self._fail("the runner's connection ended" + (f": {tail}" if tail else ""))
                raise RunnerGone(self.reason) from exc
            self._buffer += chunk
