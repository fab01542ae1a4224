"""Server-sent events as SGLang writes them: ``data: {json}\\n\\n`` ... ``data: [DONE]\\n\\n``.

A request carrying an injected :class:`~agentkit.testing.faults.Fault` gets a
:class:`FaultyStream`, which breaks the stream the way the fault says.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from .faults import (
    FAULT_KEY,
    Fault,
    FaultKind,
    error_event_body,
    malform_tool_calls,
    wrong_shape_body,
)

__all__ = ["FaultyStream", "common_prefix_length", "open_sse", "send_done", "send_event"]

_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
# Faults that strike once ``after_events`` events are out (or at the end, if fewer came).
_MID_STREAM = frozenset(
    {
        FaultKind.CONNECTION_RESET,
        FaultKind.HANG,
        FaultKind.INVALID_JSON,
        FaultKind.TRUNCATED_STREAM,
        FaultKind.ERROR_EVENT,
    }
)


class FaultyStream(web.StreamResponse):
    """An SSE response that breaks as its fault says (see :mod:`agentkit.testing.faults`)."""

    def __init__(self, request: web.Request, fault: Fault) -> None:
        super().__init__(status=200, headers=_HEADERS)
        self.origin = request
        self.fault = fault
        self.sent = 0
        self.fired = False
        self.ended = False

    async def event(self, payload: Any) -> None:
        if self.ended:
            return
        kind = self.fault.kind
        if kind is FaultKind.WRONG_SHAPE:
            payload = wrong_shape_body()
        elif kind is FaultKind.MALFORMED_TOOL_CALL:
            payload = malform_tool_calls(payload)
        if kind in _MID_STREAM and not self.fired and self.sent >= self.fault.after_events:
            await self.strike()
            if self.ended:
                return
        try:
            await _write(self, payload)
        except ConnectionResetError:  # the client gave up on the broken stream
            self.ended = True
        self.sent += 1

    async def done(self) -> None:
        if not self.ended and self.fault.kind in _MID_STREAM and not self.fired:
            await self.strike()
        if not self.ended:
            try:
                await self.write(b"data: [DONE]\n\n")
                await self.write_eof()
            except ConnectionResetError:
                self.ended = True

    async def strike(self) -> None:
        self.fired = True
        kind = self.fault.kind
        if kind is FaultKind.CONNECTION_RESET:
            self.ended = True
            if self.origin.transport is not None:
                self.origin.transport.abort()
            return
        if kind is FaultKind.HANG:
            await asyncio.sleep(self.fault.hang_s)
        elif kind is FaultKind.INVALID_JSON:
            await self.write(b'data: {"choices": [{"delta": {"content": "x"\n\n')
        elif kind is FaultKind.TRUNCATED_STREAM:
            self.ended = True
            await self.write_eof()
        elif kind is FaultKind.ERROR_EVENT:
            self.ended = True
            await _write(self, error_event_body(self.fault.status))
            await self.write(b"data: [DONE]\n\n")
            await self.write_eof()


async def open_sse(request: web.Request) -> web.StreamResponse:
    fault = request.get(FAULT_KEY)
    response = (
        FaultyStream(request, fault)
        if isinstance(fault, Fault)
        else web.StreamResponse(status=200, headers=_HEADERS)
    )
    await response.prepare(request)
    return response


async def _write(response: web.StreamResponse, payload: Any) -> None:
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    await response.write(f"data: {data}\n\n".encode())


async def send_event(response: web.StreamResponse, payload: Any) -> None:
    if isinstance(response, FaultyStream):
        await response.event(payload)
    else:
        await _write(response, payload)


async def send_done(response: web.StreamResponse) -> None:
    if isinstance(response, FaultyStream):
        await response.done()
        return
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()


def common_prefix_length(a: str, b: str) -> int:
    """Length of the common prefix (holds back a partly decoded multi-byte character)."""
    limit = min(len(a), len(b))
    index = 0
    while index < limit and a[index] == b[index]:
        index += 1
    return index
