"""Host side of the in-container command runner (see ``runner_inside.py``).

One ``docker exec -i`` per container stays open; requests go in on its stdin as JSON lines and
answers come back in Docker's multiplexed stdout frames. A warm command then costs one write and
one read on a unix socket, not a new exec.
"""

from __future__ import annotations

import itertools
import json
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import SocketStream

from .engine import Engine

RUNNER_SOURCE = Path(__file__).with_name("runner_inside.py").read_text()


class RunnerGone(RuntimeError):
    """The runner process or its connection ended."""


class Runner:
    """A connection to one container's runner; one request at a time (``lock``)."""

    def __init__(self, stream: SocketStream, leftover: bytes) -> None:
        self._stream = stream
        self._buffer = bytearray(leftover)
        self._lines = bytearray()
        self._ids = itertools.count(1)
        self.lock = anyio.Lock()
        self.closed = False

    @classmethod
    async def start(
        cls, engine: Engine, container_id: str, *, user: str, workdir: str, env: Mapping[str, str]
    ) -> Runner:
        eid = await engine.exec_create(
            container_id,
            ["python3", "-u", "-c", RUNNER_SOURCE],
            user=user,
            workdir=workdir,
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

    def next_id(self) -> int:
        return next(self._ids)

    async def request(self, payload: dict[str, Any], rid: int | None = None) -> dict[str, Any]:
        """Send one request and wait for its answer (answers to other ids are dropped)."""
        rid = self.next_id() if rid is None else rid
        await self.send({**payload, "id": rid})
        while True:
            message = json.loads(await self._read_line())
            if isinstance(message, dict) and message.get("id") == rid:
                return message

    async def send(self, payload: dict[str, Any]) -> None:
        if self.closed:
            raise RunnerGone("runner is closed")
        try:
            await self._stream.send((json.dumps(payload) + "\n").encode())
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            self.closed = True
            raise RunnerGone(str(exc)) from exc

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
        index = self._lines.index(b"\n")
        line = bytes(self._lines[:index])
        del self._lines[: index + 1]
        return line

    async def _read_frame(self) -> tuple[int, bytes]:
        header = await self._read_exactly(8)
        size = struct.unpack(">I", header[4:])[0]
        return header[0], await self._read_exactly(size)

    async def _read_exactly(self, n: int) -> bytes:
        while len(self._buffer) < n:
            try:
                chunk = await self._stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError) as exc:
                self.closed = True
                raise RunnerGone("the runner's connection ended") from exc
            self._buffer += chunk
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data
