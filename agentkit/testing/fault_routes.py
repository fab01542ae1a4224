"""Where injected faults strike a generation request: before the answer, or on its body.

Streamed replies are broken by :class:`~agentkit.testing.sse.FaultyStream` as they are written;
this module handles what happens before an answer (status errors, resets, hangs, death) and to a
non-streamed answer's body. See :mod:`agentkit.testing.faults` for what each kind does.
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from .faults import (
    Fault,
    FaultKind,
    dumps,
    error_event_body,
    malform_tool_calls,
    wrong_shape_body,
)
from .state import RequestRecord, ServerState, error_response

__all__ = ["after_answer", "before_answer"]

_BACKGROUND: set[asyncio.Task[None]] = set()


def _cut(request: web.Request) -> web.StreamResponse:
    """Abort the connection; the response returned is never sent (the client sees a reset)."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=200)


async def before_answer(
    state: ServerState,
    request: web.Request,
    record: RequestRecord,
    fault: Fault,
    openai: bool,
    *,
    stream: bool,
) -> web.StreamResponse | None:
    """An answer that replaces the real one, or ``None`` to let the handler answer."""
    kind = fault.kind
    if kind is FaultKind.HTTP_ERROR:
        return _status(record, error_response("injected fault", fault.status, openai=openai))
    if kind is FaultKind.RATE_LIMITED:
        response = error_response("injected fault: rate limited", 429, openai=openai)
        response.headers["Retry-After"] = _seconds(fault.retry_after_s)
        return _status(record, response)
    if kind is FaultKind.SERVER_DEATH:
        record.dropped = True
        record.status = 0
        if state.die is not None:
            task = asyncio.get_running_loop().create_task(state.die(fault.revive_after_s))
            _BACKGROUND.add(task)
            task.add_done_callback(_BACKGROUND.discard)
        return _cut(request)
    if stream:
        return None  # the rest strike inside the stream (FaultyStream)
    if kind is FaultKind.CONNECTION_RESET:
        record.dropped = True
        record.status = 0
        return _cut(request)
    if kind is FaultKind.HANG:
        await asyncio.sleep(fault.hang_s)
        return None
    if kind is FaultKind.INVALID_JSON:
        return _status(record, _body('{"choices": [{"message": {"content": "x"'))
    if kind is FaultKind.WRONG_SHAPE:
        return _status(record, _body(dumps(wrong_shape_body())))
    if kind is FaultKind.ERROR_EVENT:
        return _status(record, _body(dumps(error_event_body(fault.status))))
    return None


async def after_answer(
    request: web.Request, record: RequestRecord, fault: Fault, response: web.Response
) -> web.StreamResponse:
    """The handler's non-streamed answer, broken as ``fault`` says."""
    if response.status >= 400 or response.text is None:
        return response
    if fault.kind is FaultKind.MALFORMED_TOOL_CALL:
        payload = malform_tool_calls(json.loads(response.text))
        record.response = payload
        return _body(dumps(payload))
    if fault.kind is FaultKind.TRUNCATED_STREAM:
        data = response.text.encode()
        cut = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        cut.content_length = len(data)
        await cut.prepare(request)
        await cut.write(data[: len(data) // 2])
        return _cut(request)
    return response


def _body(text: str) -> web.Response:
    return web.Response(text=text, status=200, content_type="application/json")


def _status(record: RequestRecord, response: web.Response) -> web.Response:
    record.status = response.status
    return response


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
