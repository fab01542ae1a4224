"""``RetryPolicy.timeout_s`` is the longest wait for the server's next bytes, as aiohttp's
``sock_read`` keeps it, on the own client's connections and on the aiohttp session's cheaper
protocol (each: one deadline moved by each piece of data instead of a timer per piece): a server silent for longer fails the attempt as a timeout,
one that keeps sending never does, however long the whole reply takes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import pytest
from aiohttp import web

from agentkit.models import ModelError
from agentkit.models.transport import RetryPolicy, Transport, _LazyReadTimeout
from agentkit.trajectory.records import Attempt, AttemptCause

pytestmark = pytest.mark.anyio

TIMEOUT_S = 0.3
REPLY = json.dumps({"ok": True}).encode()
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/x", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/x"
    finally:
        await runner.cleanup()


async def trickle(request: web.Request) -> web.StreamResponse:
    """The reply a byte every 0.1 s: 1.3 s in all, never 0.3 s without data."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = len(REPLY)
    await response.prepare(request)
    for byte in REPLY:
        await asyncio.sleep(TIMEOUT_S / 3)
        await response.write(bytes([byte]))
    await response.write_eof()
    return response


async def stall_after_headers(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = len(REPLY)
    await response.prepare(request)
    await response.write(REPLY[:3])
    await asyncio.sleep(TIMEOUT_S * 4)
    return response


async def stall_before_headers(request: web.Request) -> web.StreamResponse:
    await asyncio.sleep(TIMEOUT_S * 4)
    return web.Response(body=REPLY, content_type="application/json")


@pytest.fixture(params=[True, False], ids=["own-client", "aiohttp"])
def own_client(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


async def _post(url: str, own_client: bool) -> tuple[object, list[Attempt], float]:
    transport = Transport(RetryPolicy(max_attempts=1, timeout_s=TIMEOUT_S), own_client=own_client)
    attempts: list[Attempt] = []
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        if own_client:
            assert transport._target(url) is not None  # the own client takes this URL
        else:
            factory = transport._session().connector._factory  # type: ignore[union-attr]
            assert factory.func is _LazyReadTimeout  # the protocol under test is the one in use
        try:
            # a guard, so that a read timeout that never fires fails the test, not hangs it
            with anyio.fail_after(TIMEOUT_S * 20):
                result: object = await transport.post_json(url, {}, attempts=attempts)
        except ModelError as exc:
            result = exc
    finally:
        await transport.aclose()
    return result, attempts, loop.time() - started


async def test_a_reply_that_keeps_coming_is_not_cut(own_client: bool) -> None:
    async with serving(trickle) as url:
        result, attempts, took = await _post(url, own_client)
    assert result == {"ok": True}
    assert [a.ok for a in attempts] == [True]
    assert took > 2 * TIMEOUT_S  # precondition: the whole reply took longer than the timeout


@pytest.mark.parametrize("handler", [stall_after_headers, stall_before_headers])
async def test_a_silent_server_times_the_attempt_out(handler: Handler, own_client: bool) -> None:
    async with serving(handler) as url:
        result, attempts, _ = await _post(url, own_client)
    assert isinstance(result, ModelError)
    (attempt,) = attempts
    # without the timeout the server's late reply would succeed, or its cut body fail as a
    # connection error: a timeout is the read timeout firing
    assert attempt.cause is AttemptCause.TIMEOUT and attempt.retryable
