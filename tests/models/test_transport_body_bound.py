"""The transport's bound on a reply body (``Transport(max_body_bytes=...)``) on every path a reply
can take: a JSON post through the own client or aiohttp (asyncio) or httpx (trio), and a stream
through aiohttp (asyncio) or httpx (trio). A body over the bound, as sent or once decoded (a
decompression bomb), fails the call; one at the bound arrives whole.

The replies come from a raw-socket server in a thread (so it serves a trio test as an asyncio
one): each connection reads one request, gets the raw bytes registered for its path, and is
closed.
"""

from __future__ import annotations

import gzip
import json
import socket
import socketserver
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import anyio
import pytest

from agentkit.models import ModelError
from agentkit.models.http1 import MAX_BODY
from agentkit.models.transport import Events, RetryPolicy, Transport
from agentkit.trajectory.records import Attempt, AttemptCause

pytestmark = pytest.mark.anyio

LIMIT = 1000  # the bound in these tests
GUARD_S = 10.0  # a hang fails the test instead of stalling the run; never a timing check


def _head(status: str, *headers: str) -> bytes:
    return "\r\n".join([f"HTTP/1.1 {status}", *headers, "", ""]).encode("latin-1")


def _json_of_size(size: int) -> bytes:
    """A JSON object of exactly ``size`` bytes."""
    body = b'{"x":"' + b"a" * (size - 8) + b'"}'
    assert len(body) == size
    return body


def _with_length(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    return (
        _head(status, "Content-Type: application/json", *headers, f"Content-Length: {len(body)}")
        + body
    )


def _chunked(body: bytes) -> bytes:
    pieces = [body[start : start + 300] for start in range(0, len(body), 300)]
    framed = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces)
    return _head("200 OK", "Content-Type: application/json", "Transfer-Encoding: chunked") + (
        framed + b"0\r\n\r\n"
    )


def _until_close(body: bytes) -> bytes:
    return _head("200 OK", "Content-Type: application/json", "Connection: close") + body


BOMB = gzip.compress(_json_of_size(50 * LIMIT), 9)  # some hundred bytes, 50 times the bound

# JSON replies over the bound: as sent (each framing), once decoded, and with an error status
OVER = {
    "content-length": _with_length(_json_of_size(LIMIT + 1)),
    "chunked": _chunked(_json_of_size(LIMIT + 1)),
    "until-close": _until_close(_json_of_size(LIMIT + 1)),
    "gzip-bomb": _with_length(BOMB, "Content-Encoding: gzip"),
    "error-status": _with_length(b"e" * (LIMIT + 1), status="500 Internal Server Error"),
}
AT_THE_BOUND = {
    "content-length": _with_length(_json_of_size(LIMIT)),
    "chunked": _chunked(_json_of_size(LIMIT)),
    "until-close": _until_close(_json_of_size(LIMIT)),
    "gzip": _with_length(gzip.compress(_json_of_size(LIMIT)), "Content-Encoding: gzip"),
}


def _sse(*frames: bytes) -> bytes:
    body = b"".join(frames)
    return _head("200 OK", "Content-Type: text/event-stream", "Connection: close") + body


_EVENT = b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\n'
STREAM_OVER = {
    # one event longer than the bound, its end never sent
    "endless-event": _sse(b"data: " + b"a" * (2 * LIMIT)),
    "error-status": _with_length(b"e" * (LIMIT + 1), status="500 Internal Server Error"),
}


class _Replies(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    replies: dict[str, bytes]
    requests: list[str]


class _Handler(socketserver.BaseRequestHandler):
    """Reads one request, answers with the bytes registered for its path, closes."""

    def handle(self) -> None:
        server = self.server
        assert isinstance(server, _Replies)
        conn: socket.socket = self.request
        received = b""
        while b"\r\n\r\n" not in received:
            data = conn.recv(65536)
            if not data:
                return
            received += data
        head, _, body = received.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = next(
            (
                int(line.split(":", 1)[1])
                for line in lines
                if line.lower().startswith("content-length:")
            ),
            0,
        )
        while len(body) < length:
            data = conn.recv(65536)
            if not data:
                return
            body += data
        path = lines[0].split(" ")[1]
        server.requests.append(path)
        conn.sendall(server.replies[path])


@pytest.fixture
def server() -> Iterator[_Replies]:
    replies = _Replies(("127.0.0.1", 0), _Handler)
    replies.replies = {}
    replies.requests = []
    thread = threading.Thread(target=replies.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield replies
    finally:
        replies.shutdown()
        replies.server_close()
        thread.join()


def _url(server: _Replies, path: str, raw: bytes) -> str:
    server.replies[path] = raw
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


# the client a JSON post takes: the own one and aiohttp under asyncio, httpx under trio
JSON_PATHS = ["own", "aiohttp", "httpx"]


@pytest.fixture(params=JSON_PATHS)
def path(request: pytest.FixtureRequest) -> str:
    if request.param == "httpx":
        pytest.importorskip("trio")
    return str(request.param)


@pytest.fixture
def anyio_backend(path: str) -> str:
    return "trio" if path == "httpx" else "asyncio"


def _transport(path: str, max_attempts: int = 2) -> Transport:
    retry = RetryPolicy(max_attempts=max_attempts, initial_backoff_s=0.001, max_backoff_s=0.005)
    return Transport(retry, max_body_bytes=LIMIT, own_client=path == "own")


async def _call(
    path: str, send: Callable[[Transport, list[Attempt]], Awaitable[Any]]
) -> tuple[Any, list[Attempt]]:
    """What ``send`` gives through a transport of ``path`` (or its ModelError), and the
    attempts it recorded."""
    transport = _transport(path)
    attempts: list[Attempt] = []
    try:
        with anyio.fail_after(GUARD_S):
            result = await send(transport, attempts)
    except ModelError as exc:
        result = exc
    finally:
        await transport.aclose()
    return result, attempts


async def _post(path: str, url: str) -> tuple[dict[str, Any] | ModelError, list[Attempt]]:
    return await _call(path, lambda t, a: t.request_json(url, {"q": 1}, _as_is, attempts=a))


async def _stream(path: str, url: str) -> tuple[list[dict[str, Any]] | ModelError, list[Attempt]]:
    return await _call(path, lambda t, a: t.stream_sse(url, {"q": 1}, _collect, attempts=a))


def _as_is(value: dict[str, Any]) -> dict[str, Any]:
    return value


async def _collect(events: Events) -> list[dict[str, Any]]:
    return [event async for event in events]


def _refused(result: Any, attempts: list[Attempt], server: _Replies) -> ModelError:
    """The call failed on its first attempt, not retried (a server that sent a body over the
    bound would send it again, and each try reads up to the bound), with the bound named."""
    assert isinstance(result, ModelError), result
    assert [(a.number, a.cause, a.retryable) for a in attempts] == [
        (1, AttemptCause.PROTOCOL, False)
    ]
    assert f"than {LIMIT} bytes, the client's bound (max_body_bytes)" in (attempts[0].error or "")
    assert "after 1 attempt(s)" in str(result) and "max_body_bytes" in str(result)
    assert result.cause is AttemptCause.PROTOCOL and result.attempts == attempts
    assert len(server.requests) == 1
    return result


# --- the argument ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, -1, 1.5, "1000", True, None])
def test_max_body_bytes_must_be_a_positive_int(value: Any) -> None:
    with pytest.raises(ValueError, match="max_body_bytes"):
        Transport(max_body_bytes=value)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_max_body_bytes_defaults_to_max_body_and_reaches_the_pool() -> None:
    assert Transport().max_body_bytes == MAX_BODY
    transport = Transport(max_body_bytes=LIMIT)
    try:
        assert transport.max_body_bytes == LIMIT
        assert transport._pool().max_body_bytes == LIMIT
    finally:
        await transport.aclose()


# --- JSON posts -------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", list(AT_THE_BOUND.values()), ids=list(AT_THE_BOUND))
async def test_a_json_body_at_the_bound_arrives_whole(
    server: _Replies, path: str, raw: bytes
) -> None:
    result, attempts = await _post(path, _url(server, "/v1/x", raw))
    assert result == json.loads(_json_of_size(LIMIT))
    assert [a.ok for a in attempts] == [True]


@pytest.mark.parametrize("raw", list(OVER.values()), ids=list(OVER))
async def test_a_json_body_over_the_bound_fails(server: _Replies, path: str, raw: bytes) -> None:
    result, attempts = await _post(path, _url(server, "/v1/x", raw))
    _refused(result, attempts, server)


# --- streams (aiohttp under asyncio, httpx under trio) ---------------------------------------


@pytest.mark.parametrize("path", ["aiohttp", "httpx"], indirect=True)
async def test_a_stream_within_the_bound_arrives(server: _Replies, path: str) -> None:
    raw = _sse(
        *[_EVENT] * (2 * LIMIT // len(_EVENT)), b"data: [DONE]\n\n"
    )  # twice the bound in all
    result, attempts = await _stream(path, _url(server, "/v1/s", raw))
    assert isinstance(result, list) and len(result) == 2 * LIMIT // len(_EVENT)
    assert [a.ok for a in attempts] == [True]


@pytest.mark.parametrize("path", ["aiohttp", "httpx"], indirect=True)
@pytest.mark.parametrize("raw", list(STREAM_OVER.values()), ids=list(STREAM_OVER))
async def test_a_stream_over_the_bound_fails(server: _Replies, path: str, raw: bytes) -> None:
    result, attempts = await _stream(path, _url(server, "/v1/s", raw))
    _refused(result, attempts, server)
