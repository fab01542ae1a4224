"""The model transport at the byte level: what must hold for any HTTP client under
:class:`~agentkit.models.transport.Transport` (non-streamed JSON POSTs), against raw-socket
servers (:mod:`tests.models.wire_servers`) that send valid HTTP in its rarer forms, or break it
anywhere. Every case runs through both clients a JSON post can take: the transport's own
(:mod:`agentkit.models.http1`, the default) and aiohttp (``own_client=False``). Each case checks the outcome and the attempts recorded (number, typed cause,
retryable), and that a :class:`ModelError` carries every attempt. Exact error texts are a
client's own; the causes are not.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from agentkit.models import ModelError
from agentkit.models.transport import RetryPolicy, Transport
from agentkit.trajectory.records import Attempt, AttemptCause
from tests.models.wire_servers import (
    Conn,
    Handler,
    WireServer,
    free_port,
    per_connection,
    replying,
    response,
)

pytestmark = pytest.mark.anyio

C = AttemptCause
TIMEOUT_S = 0.25
OK = b'{"ok":true}'
GUARD_S = 10.0  # a hang fails the test instead of stalling the run; never a timing check


def policy(max_attempts: int = 2, timeout_s: float = 5.0) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=max_attempts, initial_backoff_s=0.001, max_backoff_s=0.005, timeout_s=timeout_s
    )


_CLIENT = {"own": True}


@pytest.fixture(autouse=True, params=[True, False], ids=["own-client", "aiohttp"])
def client(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every case runs through both HTTP clients the transport can use for a JSON post: its
    own (the default) and aiohttp (``own_client=False``)."""
    _CLIENT["own"] = request.param
    yield
    _CLIENT["own"] = True


@asynccontextmanager
async def transport(
    max_attempts: int = 2, timeout_s: float = 5.0, max_connections: int | None = None
) -> AsyncIterator[Transport]:
    t = Transport(
        policy(max_attempts, timeout_s), max_connections=max_connections, own_client=_CLIENT["own"]
    )
    try:
        yield t
    finally:
        await t.aclose()


async def call(
    t: Transport, url: str, body: Any = None, **kwargs: Any
) -> tuple[dict[str, Any] | ModelError, list[Attempt]]:
    """One ``request_json``: its result (or the ModelError) and the attempts recorded."""
    attempts: list[Attempt] = []
    try:
        with anyio.fail_after(GUARD_S):
            result: dict[str, Any] | ModelError = await t.request_json(
                url, {"q": 1} if body is None else body, _as_is, attempts=attempts, **kwargs
            )
    except ModelError as exc:
        result = exc
    if isinstance(result, ModelError):
        assert result.attempts == attempts  # the error carries every attempt
    return result, attempts


def _as_is(value: dict[str, Any]) -> dict[str, Any]:
    return value


async def once(handler: Handler, **kwargs: Any) -> tuple[Any, list[Attempt], WireServer]:
    async with WireServer(handler) as server, transport(**kwargs) as t:
        result, attempts = await call(t, server.url())
    return result, attempts, server


def succeeded(attempts: list[Attempt], number: int = 1) -> None:
    assert [(a.number, a.ok, a.cause) for a in attempts][-1] == (number, True, None)
    assert len(attempts) == number and attempts[-1].status_code == 200


def failed(result: Any, attempts: list[Attempt], causes: list[AttemptCause]) -> ModelError:
    assert isinstance(result, ModelError), result
    assert [a.cause for a in attempts] == causes
    assert [a.number for a in attempts] == list(range(1, len(causes) + 1))
    assert not any(a.ok for a in attempts) and result.cause is causes[-1]
    return result


# --- valid replies in their rarer forms -------------------------------------------------------


def chunked(*pieces: bytes, extensions: bool = False, trailers: bool = False) -> bytes:
    out = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    for piece in pieces:
        ext = b';name="v";flag' if extensions else b""
        out += b"%x%s\r\n%s\r\n" % (len(piece), ext, piece)
    out += b"0\r\n" + (b"X-Trailer: t\r\nX-Other: u\r\n" if trailers else b"") + b"\r\n"
    return out


BIG = json.dumps({"text": "x" * (6 * 1024 * 1024), "n": [1, 2, 3]}).encode()

VALID = {
    "content-length": response(OK),
    "chunked": chunked(b'{"o', b"k", b'":true}'),
    "chunked-ext-trailers": chunked(b'{"ok"', b":true}", extensions=True, trailers=True),
    "chunked-upper-hex": chunked(b" " * 26 + OK),
    "until-close": response(OK, length=False, headers=[("Connection", "close")]),
    "http10-length": response(OK, version="HTTP/1.0"),
    "http10-until-close": response(OK, version="HTTP/1.0", length=False),
    "odd-case-headers": b"HTTP/1.1 200 OK\r\ncOnTeNt-TyPe: application/json\r\n"
    b"CONTENT-LENGTH: 11\r\nx-WeIrD: 1\r\n\r\n" + OK,
    "reason-phrase-empty": b"HTTP/1.1 200 \r\nContent-Length: 11\r\n\r\n" + OK,
    "100-continue": b"HTTP/1.1 100 Continue\r\n\r\n" + response(OK),
    "two-1xx": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n" + response(OK),
    "gzip": response(
        gzip.compress(OK),
        headers=[("Content-Type", "application/json"), ("Content-Encoding", "gzip")],
    ),
}


@pytest.mark.parametrize("raw", list(VALID.values()), ids=list(VALID))
async def test_a_valid_reply_in_any_framing_succeeds_in_one_attempt(raw: bytes) -> None:
    close = b"Connection: close" in raw or (raw.startswith(b"HTTP/1.0") and b"Length" not in raw)
    result, attempts, server = await once(replying(raw, then_close=close))
    assert result == {"ok": True}
    succeeded(attempts)
    assert server.accepted == 1


async def test_a_reply_in_one_byte_writes_succeeds() -> None:
    async def handler(conn: Conn) -> None:
        await conn.read_request()
        await conn.trickle(chunked(b'{"ok"', b":true}", trailers=True), pause_s=0.001)
        await conn.until_client_closes()

    result, attempts, _ = await once(handler)
    assert result == {"ok": True}
    succeeded(attempts)


async def test_a_body_of_several_megabytes_arrives_whole() -> None:
    result, attempts, _ = await once(replying(response(BIG)))
    assert isinstance(result, dict) and len(result["text"]) == 6 * 1024 * 1024
    assert result["n"] == [1, 2, 3]
    succeeded(attempts)


async def test_a_reply_that_keeps_coming_is_not_cut_by_the_read_timeout() -> None:
    async def handler(conn: Conn) -> None:
        await conn.read_request()
        # a byte every TIMEOUT_S / 5: the whole reply takes several read timeouts
        await conn.trickle(response(OK)[:20], piece=5, pause_s=TIMEOUT_S / 5)
        await conn.trickle(response(OK)[20:], piece=8, pause_s=TIMEOUT_S / 5)
        await conn.until_client_closes()

    result, attempts, _ = await once(handler, timeout_s=TIMEOUT_S)
    assert result == {"ok": True}
    succeeded(attempts)


# --- keep-alive ---------------------------------------------------------------------------------


async def test_sequential_requests_reuse_one_connection() -> None:
    async with WireServer(replying(response(OK))) as server, transport() as t:
        for _ in range(3):
            result, attempts = await call(t, server.url())
            assert result == {"ok": True}
            succeeded(attempts)
    assert server.accepted == 1 and len(server.requests) == 3


async def test_a_connection_close_reply_is_not_reused() -> None:
    close = response(OK, headers=[("Content-Type", "application/json"), ("Connection", "close")])
    async with WireServer(replying(close)) as server, transport() as t:
        for _ in range(2):
            result, attempts = await call(t, server.url())
            assert result == {"ok": True}
            succeeded(attempts)
    assert server.accepted == 2


async def test_an_idle_connection_the_server_closed_is_not_reused() -> None:
    async def close_after_one(conn: Conn) -> None:
        await conn.read_request()
        await conn.send(response(OK))  # a keep-alive reply; then the server closes it idle
        conn.writer.write_eof()
        await conn.until_client_closes()  # the client closes its end once it saw the FIN

    handler = per_connection(close_after_one, replying(response(OK)))
    async with WireServer(handler) as server, transport() as t:
        first, _ = await call(t, server.url())
        with anyio.fail_after(GUARD_S):
            await server.conns[0].closed_by_client.wait()
        result, attempts = await call(t, server.url())
    assert first == result == {"ok": True}
    succeeded(attempts)  # no failed attempt: the connection known closed is not used
    assert server.accepted == 2 and len(server.conns[0].requests) == 1


async def test_a_kept_alive_connection_closed_without_a_reply_is_one_failed_attempt() -> None:
    """The server read the second request on the reused connection and closed it without a
    reply (its idle close crossing the request): the attempt fails as a connection failure,
    visibly, and the retry on a new connection succeeds."""

    async def close_on_second(conn: Conn) -> None:
        await conn.read_request()
        await conn.send(response(OK))
        await conn.read_request()  # then close, no reply

    handler = per_connection(close_on_second, replying(response(OK)))
    async with WireServer(handler) as server, transport() as t:
        first, _ = await call(t, server.url())
        result, attempts = await call(t, server.url())
    assert first == result == {"ok": True}
    assert [(a.cause, a.retryable) for a in attempts] == [(C.CONNECTION, True), (None, None)]
    assert server.accepted == 2 and len(server.requests) == 3


# --- failures -------------------------------------------------------------------------------------


async def test_connection_refused_is_retried_and_every_attempt_recorded() -> None:
    async with transport(max_attempts=3) as t:
        result, attempts = await call(t, f"http://127.0.0.1:{free_port()}/v1/x")
    error = failed(result, attempts, [C.CONNECTION] * 3)
    assert all(a.retryable for a in attempts) and error.can_fail_over
    assert [a.backoff_s is not None for a in attempts] == [True, True, False]


CUT = {
    "after-headers": response(OK)[: -len(OK)],
    "mid-body": response(OK)[:-4],
    "chunked-mid-chunk": chunked(b'{"ok":true}')[:-12],
    "chunked-before-last-chunk": chunked(b'{"ok":true}')[:-5],
    "mid-headers": response(OK)[:20],
    "after-100-continue": b"HTTP/1.1 100 Continue\r\n\r\n",
    "nothing": b"",
}


@pytest.mark.parametrize("raw", list(CUT.values()), ids=list(CUT))
async def test_a_reply_cut_off_is_a_retried_connection_failure(raw: bytes) -> None:
    async def cut(conn: Conn) -> None:
        await conn.read_request()
        await conn.send(raw)  # and close

    result, attempts, server = await once(cut)
    failed(result, attempts, [C.CONNECTION, C.CONNECTION])
    assert all(a.retryable for a in attempts) and result.can_fail_over
    assert server.accepted == 2


async def test_a_cut_off_reply_then_a_whole_one_succeeds_on_the_retry() -> None:
    async def cut(conn: Conn) -> None:
        await conn.read_request()
        await conn.send(response(OK)[:-3])

    result, attempts, server = await once(per_connection(cut, replying(response(OK))))
    assert result == {"ok": True}
    assert [(a.number, a.cause) for a in attempts] == [(1, C.CONNECTION), (2, None)]
    assert server.accepted == 2


NOT_HTTP = {
    "garbage-status-line": b"HELLO THERE\r\n\r\n",
    "binary-garbage": bytes(range(256)) + b"\r\n\r\n",
    "status-not-a-number": b"HTTP/1.1 2xx OK\r\nContent-Length: 11\r\n\r\n" + OK,
    "status-four-digits": b"HTTP/1.1 2000 OK\r\nContent-Length: 11\r\n\r\n" + OK,
    "unknown-version": b"HTTP/9.9 200 OK\r\nContent-Length: 11\r\n\r\n" + OK,
    "header-without-colon": b"HTTP/1.1 200 OK\r\nno colon here\r\nContent-Length: 11\r\n\r\n" + OK,
    "bad-content-length": b"HTTP/1.1 200 OK\r\nContent-Length: eleven\r\n\r\n" + OK,
    "malformed-chunk-size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    + OK
    + b"\r\n0\r\n\r\n",
    "headers-never-end": b"HTTP/1.1 200 OK\r\n" + b"X-Filler: abcdefgh\r\n" * 4000,
}


@pytest.mark.parametrize("raw", list(NOT_HTTP.values()), ids=list(NOT_HTTP))
async def test_a_reply_that_is_not_http_is_a_retried_protocol_failure(raw: bytes) -> None:
    async def garbage(conn: Conn) -> None:
        await conn.read_request()
        await conn.send(raw)
        await conn.until_client_closes()  # the client must give up on it, not the server

    result, attempts, server = await once(garbage, timeout_s=TIMEOUT_S)
    error = failed(result, attempts, [C.PROTOCOL, C.PROTOCOL])
    assert all(a.retryable for a in attempts) and error.can_fail_over
    assert server.accepted == 2


# --- error statuses and bodies that are not a JSON object -----------------------------------


def json_headers(*extra: tuple[str, str]) -> list[tuple[str, str]]:
    return [("Content-Type", "application/json"), *extra]


STATUS = {
    "500-html": (
        response(
            b"<h1>oops</h1>",
            status="500 Internal Server Error",
            headers=[("Content-Type", "text/html")],
        ),
        500,
        True,
        None,
    ),
    "503-retry-after": (
        response(
            b'{"error":"busy"}',
            status="503 Service Unavailable",
            headers=json_headers(("Retry-After", "0")),
        ),
        503,
        True,
        0.0,
    ),
    "429-no-body": (response(b"", status="429 Too Many Requests"), 429, True, None),
    "502-not-utf8": (response(b"\xff\xfe bad", status="502 Bad Gateway"), 502, True, None),
    "404-text": (
        response(
            b"no such route", status="404 Not Found", headers=[("Content-Type", "text/plain")]
        ),
        404,
        False,
        None,
    ),
    "400-chunked-json": (
        b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'f\r\n{"error":"bad r\r\n4\r\neq"}\r\n0\r\n\r\n',
        400,
        False,
        None,
    ),
}


@pytest.mark.parametrize("case", list(STATUS.values()), ids=list(STATUS))
async def test_an_error_status_is_recorded_with_its_code(
    case: tuple[bytes, int, bool, float | None],
) -> None:
    raw, status, retryable, retry_after = case
    result, attempts, server = await once(replying(raw))
    causes = [C.HTTP_STATUS] * (2 if retryable else 1)
    error = failed(result, attempts, causes)
    assert [a.status_code for a in attempts] == [status] * len(causes)
    assert all(a.retryable is retryable for a in attempts)
    assert attempts[0].retry_after_s == retry_after
    assert error.can_fail_over is retryable
    assert server.accepted == 1  # an error reply with its length keeps the connection


BAD_BODY = {
    "not-json": b"<html>hello</html>",
    "not-utf8": b'{"a":"\xff"}',
    "array": b"[1,2,3]",
    "string": b'"ok"',
    "empty": b"",
    "truncated-json": b'{"ok":',
}


@pytest.mark.parametrize("body", list(BAD_BODY.values()), ids=list(BAD_BODY))
async def test_a_200_whose_body_is_not_a_json_object_is_a_protocol_failure(body: bytes) -> None:
    result, attempts, _ = await once(replying(response(body)))
    error = failed(result, attempts, [C.PROTOCOL, C.PROTOCOL])
    assert all(a.retryable for a in attempts) and error.can_fail_over
    assert [a.status_code for a in attempts] == [None, None]


async def test_a_server_that_never_answers_times_each_attempt_out() -> None:
    async def silent(conn: Conn) -> None:
        await conn.read_request()
        await conn.until_client_closes()

    async with WireServer(silent) as server:
        async with transport(timeout_s=TIMEOUT_S) as t:
            result, attempts = await call(t, server.url())
        await server.all_closed_by_client()  # the timed-out connections were closed
    failed(result, attempts, [C.TIMEOUT, C.TIMEOUT])
    assert all(a.retryable for a in attempts) and server.accepted == 2


# --- the request as sent ------------------------------------------------------------------------


async def test_the_request_is_valid_http_1_1_with_every_header() -> None:
    body = {"model": "m", "text": "h\u00e9llo \u2603", "n": [1, 2.5, None, True]}
    async with WireServer(replying(response(OK))) as server, transport() as t:
        url = server.url("/v1/x?a=1&b=%20c")
        result, _ = await call(t, url, body, headers={"X-Routing-Key": "ep-7"})
        encoded = b'{"already":"encoded" , "x":[1]}'
        again, _ = await call(t, url, encoded)
    assert result == again == {"ok": True}
    first, second = server.requests
    assert (first.method, first.target, first.version) == ("POST", "/v1/x?a=1&b=%20c", "HTTP/1.1")
    assert first.header("host") == [f"127.0.0.1:{server.port}"]
    assert first.header("content-type") == ["application/json"]
    assert first.header("content-length") == [str(len(first.body))]
    assert first.header("x-routing-key") == ["ep-7"]
    assert first.header("transfer-encoding") == []
    assert json.loads(first.body) == body
    assert second.body == encoded and second.header("content-length") == [str(len(encoded))]
    assert second.header("x-routing-key") == []  # headers are per call


@pytest.mark.parametrize("value", ["a\r\nX-Injected: 1", "a\nb", "a\rb"])
async def test_a_header_value_with_cr_or_lf_is_refused_before_anything_is_sent(
    value: str,
) -> None:
    async with WireServer(replying(response(OK))) as server, transport() as t:
        result, attempts = await call(t, server.url(), headers={"X-Key": value})
        await server.all_closed_by_client()
    error = failed(result, attempts, [C.CLIENT_ERROR])
    assert attempts[0].retryable is False and not error.can_fail_over
    assert all(conn.received == b"" for conn in server.conns)  # not one byte sent


# --- cancellation and the pool ----------------------------------------------------------------


async def test_a_cancelled_request_leaks_no_connection_and_the_transport_goes_on() -> None:
    got_request = asyncio.Event()

    async def hold(conn: Conn) -> None:
        await conn.read_request()
        got_request.set()
        await conn.until_client_closes()

    handler = per_connection(hold, replying(response(OK)))
    async with WireServer(handler) as server, transport() as t:
        task = asyncio.ensure_future(call(t, server.url()))
        with anyio.fail_after(GUARD_S):
            await got_request.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        with anyio.fail_after(GUARD_S):
            await server.conns[0].closed_by_client.wait()  # closed, not kept in the pool
        result, attempts = await call(t, server.url())
    assert result == {"ok": True}
    succeeded(attempts)
    assert server.accepted == 2


async def test_concurrent_requests_never_open_more_connections_than_the_bound() -> None:
    async def slow(conn: Conn) -> None:
        while await conn.read_request() is not None:
            await asyncio.sleep(0.005)
            await conn.send(response(OK))

    results: list[Any] = []
    async with WireServer(slow) as server, transport(max_connections=4) as t:

        async def one() -> None:
            results.append(await call(t, server.url()))

        async with anyio.create_task_group() as tg:
            for _ in range(50):
                tg.start_soon(one)
    assert len(results) == 50
    for result, attempts in results:
        assert result == {"ok": True}
        succeeded(attempts)
    assert 1 < server.max_open <= 4 and server.accepted <= 4
    assert len(server.requests) == 50


async def test_aclose_closes_every_connection() -> None:
    async with WireServer(replying(response(OK))) as server:
        async with transport() as t:
            for _ in range(2):
                await call(t, server.url())
        await server.all_closed_by_client()
    assert server.accepted == 1
