"""Unit tests of the transport's own HTTP/1.1 client (:mod:`agentkit.models.http1`): which URLs
and headers it takes (request.py), how one connection reads a reply (connection.py), how the
pool shares connections (pool.py), and how its failures are classified (failures.py).

The parser is fed a reply either over a real socket pair (the bytes written at once) or by
calling the protocol's ``data_received`` with pieces of a chosen size, so a reply split anywhere
can be checked; the pool runs against the raw-socket servers of :mod:`tests.models.wire_servers`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import gzip
import itertools
import random
import sys
import warnings
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, NamedTuple

import aiohttp
import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from agentkit.models.failures import (
    BodyTooLong,
    ProtocolError,
    ReadTimeout,
    ReplyCutOff,
    classify,
)
from agentkit.models.http1 import (
    MAX_BODY,
    MAX_HEAD,
    ConnectionTimeout,
    Pool,
    Reply,
    Target,
    request_head,
    target_of,
)
from agentkit.models.http1 import pool as pool_module
from agentkit.models.http1.connection import MAX_GZIP_MEMBERS, MAX_INTERIM, Connection
from agentkit.trajectory.records import AttemptCause
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

GUARD_S = 10.0  # a hang fails the test instead of stalling the run; never a timing check
OK = b'{"ok":true}'


# --- request.py: the URLs taken


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:30000/v1/x", Target("127.0.0.1", 30000, b"/v1/x", b"127.0.0.1:30000")),
        ("http://example.com", Target("example.com", 80, b"/", b"example.com")),
        ("http://Example.COM/a?b=1&c", Target("example.com", 80, b"/a?b=1&c", b"example.com")),
        ("http://[::1]:8000/x", Target("::1", 8000, b"/x", b"[::1]:8000")),
        ("HTTP://h/x#frag", Target("h", 80, b"/x", b"h")),
    ],
)
def test_target_of_a_plain_http_url(url: str, expected: Target) -> None:
    assert target_of(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/x",
        "ftp://example.com/x",
        "/v1/x",
        "http:///x",
        "http://user@example.com/x",
        "http://user:secret@example.com/x",
        "http://:secret@example.com/x",
        "http://exämple.com/x",
        "http://example.com/ä",
        "http://example.com:99999/x",
        "http://example.com:-1/x",
        "http://example.com:port/x",
        "http://[::1/x",
        "http://example.com/a b",
        "http://example.com/a\tb",
        "http://example.com/a\r\nX-Injected: 1",
        "http://example.com/a\nb",
    ],
)
def test_target_of_refuses(url: str) -> None:
    assert target_of(url) is None


CONTROLS = [chr(c) for c in range(0x20)] + ["\x7f"]


@pytest.mark.parametrize(
    "where", ["http://h{}/x", "http://h/x{}y", "http://h/x?a={}", "{}http://h/x"]
)
@pytest.mark.parametrize("control", CONTROLS, ids=[f"{ord(c):#04x}" for c in CONTROLS])
def test_target_of_refuses_ascii_control_characters_anywhere(where: str, control: str) -> None:
    """urlsplit drops some of them (tab, CR, LF; leading ones) and keeps the others, which
    would reach the request line: either way the URL is not the one sent, so it is refused."""
    assert target_of(where.format(control)) is None


def test_target_of_is_cached_and_stable() -> None:
    url = "http://127.0.0.1:1/cached"
    first = target_of(url)
    assert first is not None
    assert target_of(url) is first


# --- request.py: the request head

TARGET = Target("127.0.0.1", 8000, b"/v1/x", b"127.0.0.1:8000")


def test_request_head_bytes() -> None:
    head = request_head(TARGET, {"Content-Type": "application/json", "X-Id": "é"})
    assert head == (
        b"POST /v1/x HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n"
        b"Content-Type: application/json\r\nX-Id: \xc3\xa9\r\nContent-Length: "
    )


def test_request_head_without_headers() -> None:
    assert request_head(TARGET, {}) == (
        b"POST /v1/x HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Length: "
    )


@pytest.mark.parametrize("name", ["Host", "host", "HOST"])
def test_a_callers_host_replaces_the_urls(name: str) -> None:
    head = request_head(TARGET, {"X-A": "1", name: "model.internal"})
    assert head.count(b"Host") + head.count(b"host") + head.count(b"HOST") == 1
    assert head == (b"POST /v1/x HTTP/1.1\r\nHost: model.internal\r\nX-A: 1\r\nContent-Length: ")


@pytest.mark.parametrize(
    "value", ["a\rb", "a\nb", "a\r\nX-Injected: 1", "a\x00b", "\r\n", "trailing\n"]
)
def test_request_head_refuses_a_value_with_cr_lf_or_nul(value: str) -> None:
    with pytest.raises(ValueError, match="invalid value"):
        request_head(TARGET, {"X-A": value})


@pytest.mark.parametrize("name", ["", "X A", "X:A", "X-A\r\n", "Ä", "(x)", "a/b", "x\x00"])
def test_request_head_refuses_a_name_that_is_not_a_token(name: str) -> None:
    with pytest.raises(ValueError, match="invalid header name"):
        request_head(TARGET, {name: "1"})


@pytest.mark.parametrize(
    "name", ["Content-Length", "content-length", "Transfer-Encoding", "CONNECTION"]
)
def test_request_head_refuses_a_framing_header(name: str) -> None:
    with pytest.raises(ValueError, match="set by the client"):
        request_head(TARGET, {name: "1"})


def test_request_head_refuses_values_that_are_not_strings() -> None:
    with pytest.raises(ValueError, match="invalid value"):
        request_head(TARGET, {"X-A": 1})  # type: ignore[dict-item]


def test_a_refused_head_is_refused_again() -> None:
    """A refusal is not cached as a head: the second call raises as the first did."""
    for _ in range(2):
        with pytest.raises(ValueError, match="invalid value"):
            request_head(TARGET, {"X-A": "a\nb"})


def test_the_head_cache_returns_equal_bytes() -> None:
    headers = {"Content-Type": "application/json", "Authorization": "Bearer t"}
    first = request_head(TARGET, headers)
    again = request_head(TARGET, dict(headers))
    assert again == first
    other = request_head(TARGET, {"Content-Type": "application/json", "Authorization": "Bearer u"})
    assert other != first
    assert other == first.replace(b"Bearer t", b"Bearer u")
    # the same headers in another order are another head, built the same way
    reordered = request_head(TARGET, dict(reversed(headers.items())))
    assert sorted(reordered.split(b"\r\n")) == sorted(first.split(b"\r\n"))


# --- connection.py: reading one reply

REQUEST = b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}"


class _Wire(asyncio.Transport):
    """The transport under a connection fed by hand: keeps what is written; closing it ends
    the connection as a real transport does (``connection_lost`` soon after)."""

    def __init__(self, protocol: asyncio.Protocol) -> None:
        super().__init__()
        self.protocol = protocol
        self.written = bytearray()
        self.closing = False

    def write(self, data: Any) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)


async def fed(
    pieces: list[bytes],
    *,
    close: bool = False,
    read_timeout_s: float = GUARD_S,
    max_body_bytes: int = MAX_BODY,
) -> tuple[Reply, Connection]:
    """The reply a connection reads from ``pieces`` (each one ``data_received`` call), then
    the server's close if ``close``; and the connection."""
    conn = Connection(asyncio.get_running_loop(), read_timeout_s, max_body_bytes)
    wire = _Wire(conn)
    conn.connection_made(wire)
    asking = asyncio.ensure_future(conn.request(REQUEST))
    await asyncio.sleep(0)  # the request written and its reply awaited
    assert bytes(wire.written) == REQUEST
    for piece in pieces:
        if wire.is_closing():  # the connection failed: a real transport delivers no more
            break
        conn.data_received(piece)
    if close and not wire.is_closing() and not conn.eof_received():
        wire.close()
    with anyio.fail_after(GUARD_S):
        return await asking, conn


def pieces_of(data: bytes, size: int) -> list[bytes]:
    return [data[start : start + size] for start in range(0, len(data), size)]


async def over_socket(data: bytes, *, close: bool = False) -> tuple[Reply, bool]:
    """The reply a connection reads over a real loopback TCP connection from a server that
    writes ``data`` at once after the request, then closes if ``close``; and whether the
    connection was left reusable."""

    async def handler(server_side: Conn) -> None:
        await server_side.read_request()
        await server_side.send(data)
        if not close:
            await server_side.until_client_closes()

    loop = asyncio.get_running_loop()
    async with WireServer(handler) as server:
        _, conn = await loop.create_connection(
            lambda: Connection(loop, GUARD_S), "127.0.0.1", server.port
        )
        try:
            with anyio.fail_after(GUARD_S):
                reply = await conn.request(REQUEST)
            return reply, conn.reusable
        finally:
            conn.close()


HOW = ["socket", "bytewise", "7-byte pieces", "whole"]


@pytest.fixture(params=HOW)
def how(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def read(data: bytes, how: str, *, close: bool = False) -> tuple[Reply, bool]:
    """The reply read from ``data`` over a socket or fed in pieces, as ``how`` says, and
    whether the connection is left reusable."""
    if how == "socket":
        return await over_socket(data, close=close)
    size = {"bytewise": 1, "7-byte pieces": 7, "whole": max(len(data), 1)}[how]
    reply, conn = await fed(pieces_of(data, size), close=close)
    return reply, conn.reusable


def head(status: str = "200 OK", *headers: str, version: str = "HTTP/1.1") -> bytes:
    return "\r\n".join([f"{version} {status}", *headers, "", ""]).encode("latin-1")


def with_length(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    return head(status, *headers, f"Content-Length: {len(body)}") + body


def chunked(*chunks: bytes, trailers: tuple[str, ...] = ()) -> bytes:
    framed = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks if chunk)
    return framed + b"0\r\n" + "".join(f"{t}\r\n" for t in trailers).encode() + b"\r\n"


async def test_a_content_length_body(how: str) -> None:
    reply, reusable = await read(with_length(OK, "Content-Type: application/json"), how)
    assert reply == Reply(200, OK, None)
    assert reusable


async def test_an_error_status_with_retry_after(how: str) -> None:
    data = with_length(b"busy", "Retry-After: 7", status="503 Service Unavailable")
    reply, reusable = await read(data, how)
    assert reply == Reply(503, b"busy", "7")
    assert reusable


async def test_a_status_line_without_a_reason(how: str) -> None:
    reply, _ = await read(b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok", how)
    assert reply == Reply(200, b"ok", None)


async def test_an_empty_content_length_body(how: str) -> None:
    reply, reusable = await read(with_length(b""), how)
    assert reply == Reply(200, b"", None)
    assert reusable


async def test_repeated_equal_content_lengths(how: str) -> None:
    data = head("200 OK", "Content-Length: 2", "content-length: 2") + b"ok"
    reply, reusable = await read(data, how)
    assert reply.body == b"ok"
    assert reusable


async def test_different_content_lengths_are_refused(how: str) -> None:
    data = head("200 OK", "Content-Length: 2", "Content-Length: 3") + b"okk"
    with pytest.raises(ProtocolError, match="different Content-Length"):
        await read(data, how)


@pytest.mark.parametrize("value", ["abc", "-1", "+2", "1e3", "0x10", "2 2", "1" * 19])
async def test_an_invalid_content_length_is_refused(how: str, value: str) -> None:
    with pytest.raises(ProtocolError, match="invalid Content-Length"):
        await read(head("200 OK", f"Content-Length: {value}") + b"ok", how)


@pytest.mark.parametrize("value", ["\u00b2", "1\u00b3", "\u00b9\u00b9"])
async def test_a_content_length_of_non_ascii_digits_is_refused(how: str, value: str) -> None:
    """Latin-1 superscript digits: ``str.isdigit`` is true of them, ``int`` refuses them."""
    data = head("200 OK", f"Content-Length: {value}") + b"ok"
    with pytest.raises(ProtocolError, match="invalid Content-Length"):
        await read(data, how)


async def test_a_chunked_body_with_extensions_and_trailers(how: str) -> None:
    data = head("200 OK", "Transfer-Encoding: chunked") + (
        b"5;name=value;x\r\nhello\r\nA ;ext\r\n, world!!!\r\n"
        b"0;last\r\nX-Checksum: 1\r\nX-Other: 2\r\n\r\n"
    )
    reply, reusable = await read(data, how)
    assert reply == Reply(200, b"hello, world!!!", None)
    assert reusable


async def test_a_chunked_body_in_many_chunks(how: str) -> None:
    body = bytes(range(256)) * 3
    data = head("200 OK", "Transfer-Encoding: chunked") + chunked(
        *(body[i : i + 17] for i in range(0, len(body), 17))
    )
    reply, reusable = await read(data, how)
    assert reply.body == body
    assert reusable


async def test_an_empty_chunked_body(how: str) -> None:
    reply, reusable = await read(head("200 OK", "Transfer-Encoding: chunked") + b"0\r\n\r\n", how)
    assert reply == Reply(200, b"", None)
    assert reusable


@pytest.mark.parametrize(
    "framed",
    [b"zz\r\nhello\r\n0\r\n\r\n", b"5\r\nhelloXX0\r\n\r\n", b"-5\r\nhello\r\n0\r\n\r\n"],
    ids=["bad size", "no CRLF after the data", "negative size"],
)
async def test_a_malformed_chunk_is_refused(how: str, framed: bytes) -> None:
    with pytest.raises(ProtocolError, match="chunk"):
        await read(head("200 OK", "Transfer-Encoding: chunked") + framed, how)


@pytest.mark.parametrize(
    "trailers",
    [b"no colon\r\n", b"X-A: a\rb\r\n", b" folded: 1\r\n", b"X-A: 1\nX-B: 2\r\n", b"A B: 1\r\n"],
    ids=["no colon", "CR in a value", "folded", "bare LF within", "not a token"],
)
async def test_a_malformed_trailer_line_is_refused(how: str, trailers: bytes) -> None:
    """Trailer lines are ignored, but checked as header lines are (RFC 9112 section 7.1.2:
    the trailer section is field lines)."""
    data = head("200 OK", "Transfer-Encoding: chunked") + b"2\r\nok\r\n0\r\n" + trailers + b"\r\n"
    with pytest.raises(ProtocolError, match=r"malformed header line|LF without a CR"):
        await read(data, how)


@pytest.mark.parametrize(
    "end", [b"\n", b"X-Sum: 1\n\n", b"X-Sum: 1\r\n\n"], ids=["LF", "LF LF", "CRLF LF"]
)
async def test_trailers_ended_by_a_bare_lf_are_refused_as_it_comes(how: str, end: bytes) -> None:
    """A parser that ends lines at a LF alone (h11) reads the reply as whole there; this
    client, which ends them at CRLF only, waited for more trailer lines (and would have read a
    next reply's head as them): refused as soon as the LF comes."""
    data = head("200 OK", "Transfer-Encoding: chunked") + b"2\r\nok\r\n0\r\n" + end
    with pytest.raises(ProtocolError, match="LF without a CR before it in the reply's trailers"):
        await read(data, how)


async def test_a_chunked_body_cut_off(how: str) -> None:
    data = head("200 OK", "Transfer-Encoding: chunked") + b"5\r\nhel"
    with pytest.raises(ReplyCutOff, match="whole reply body"):
        await read(data, how, close=True)


async def test_a_content_length_body_cut_off(how: str) -> None:
    with pytest.raises(ReplyCutOff, match="whole reply body"):
        await read(head("200 OK", "Content-Length: 10") + b"short", how, close=True)


async def test_a_head_cut_off(how: str) -> None:
    with pytest.raises(ReplyCutOff, match="reply head"):
        await read(b"HTTP/1.1 200 OK\r\nContent-Len", how, close=True)


async def test_nothing_before_the_close(how: str) -> None:
    with pytest.raises(ReplyCutOff, match=r"reply head \(0 bytes\)"):
        await read(b"", how, close=True)


@pytest.mark.parametrize(
    ("reply_head", "body"),
    [
        (head("200 OK", "Content-Type: text/plain"), b"until the close"),
        (head("200 OK", version="HTTP/1.0"), b"an old server"),
        (head("200 OK", "Transfer-Encoding: identity"), b"not chunked"),
        (head("200 OK"), b""),
    ],
    ids=["no length", "HTTP/1.0", "not chunked", "empty"],
)
async def test_a_body_until_the_close(how: str, reply_head: bytes, body: bytes) -> None:
    reply, reusable = await read(reply_head + body, how, close=True)
    assert reply == Reply(200, body, None)
    assert not reusable


@pytest.mark.parametrize(
    "codings",
    [
        ("gzip, chunked",),
        ("gzip", "chunked"),
        ("chunked, gzip",),
        ("deflate",),
        ("x-custom, chunked",),
        ("chunked, chunked",),
        ("chunked", "chunked"),
        ("chunked, identity",),
    ],
    ids=lambda codings: " + ".join(codings),
)
async def test_a_transfer_coding_not_decoded_is_refused(how: str, codings: tuple[str, ...]) -> None:
    """Only ``chunked`` (once, last) is decoded: a body with another transfer coding, or
    chunked twice, or chunked not last (then delimited by the close, RFC 9112 section 6.3),
    was returned still coded (gzip bytes, a body decoded from its chunks only once, chunk
    framing in the body)."""
    headers = [f"Transfer-Encoding: {coding}" for coding in codings]
    body = gzip.compress(b"ok") if "gzip" in " ".join(codings) else b"ok"
    for _ in range(" ".join(codings).count("chunked")):
        body = chunked(body)
    with pytest.raises(ProtocolError, match="transfer coding this client does not decode"):
        await read(head("200 OK", *headers) + body, how, close=True)


@pytest.mark.parametrize("coding", ["identity, chunked", "Chunked", " chunked ,", "chunked\t"])
async def test_chunked_after_identity_or_among_empty_elements_is_chunked(
    how: str, coding: str
) -> None:
    reply, reusable = await read(
        head("200 OK", f"Transfer-Encoding: {coding}") + chunked(b"ok"), how
    )
    assert reply == Reply(200, b"ok", None)
    assert reusable


@pytest.mark.parametrize(
    "headers",
    [
        ("Transfer-Encoding: chunked", "Connection: keep-alive"),
        ("Transfer-Encoding: chunked", "Content-Length: 7"),
        ("Transfer-Encoding: identity",),
    ],
    ids=["keep-alive", "and Content-Length", "identity"],
)
async def test_an_http_1_0_reply_with_a_transfer_encoding_is_refused(
    how: str, headers: tuple[str, ...]
) -> None:
    """RFC 9112 section 6.1: a client that receives an HTTP/1.0 message with a
    Transfer-Encoding MUST treat the message as if the framing is faulty, even with a
    Content-Length (an HTTP/1.0 hop between does not frame it so). It was read by chunks, and
    left reusable with a keep-alive."""
    data = head("200 OK", *headers, version="HTTP/1.0") + chunked(b"ok")
    with pytest.raises(ProtocolError, match=r"HTTP/1\.0 reply has a Transfer-Encoding"):
        await read(data, how, close=True)


async def test_interim_replies_are_skipped(how: str) -> None:
    data = (
        head("100 Continue")
        + head("103 Early Hints", "Link: </style.css>; rel=preload")
        + with_length(OK)
    )
    reply, reusable = await read(data, how)
    assert reply == Reply(200, OK, None)
    assert reusable


async def test_up_to_max_interim_replies_are_skipped(how: str) -> None:
    data = head("100 Continue") * (MAX_INTERIM - 1) + head("103 Early Hints") + with_length(OK)
    reply, reusable = await read(data, how)
    assert reply == Reply(200, OK, None)
    assert reusable


async def test_more_than_max_interim_replies_are_refused(how: str) -> None:
    data = head("100 Continue") * (MAX_INTERIM + 1) + with_length(OK)
    with pytest.raises(ProtocolError, match=f"more than {MAX_INTERIM} interim"):
        await read(data, how)


async def test_the_interim_replies_are_counted_per_request() -> None:
    data = head("100 Continue") * MAX_INTERIM + with_length(OK)
    async with WireServer(replying(data)) as server, pooled() as pool:
        for _ in range(3):
            assert await post(pool, server) == Reply(200, OK, None)
    assert server.accepted == 1


async def test_an_endless_stream_of_interim_replies_is_refused() -> None:
    """A server that sends ``100 Continue`` on and on, never the final reply: refused once
    there are more than :data:`MAX_INTERIM`, not left to the read timeout."""

    async def endless(conn: Conn) -> None:
        await conn.read_request()
        with contextlib.suppress(ConnectionError):
            for _ in range(100 * MAX_INTERIM):
                await conn.send(head("100 Continue"))
        await conn.until_client_closes()

    async with WireServer(endless) as server, pooled() as pool:
        with pytest.raises(ProtocolError, match=f"more than {MAX_INTERIM} interim"):
            await post(pool, server)
        await server.all_closed_by_client()
        assert pool.open_connections == 0


async def test_switching_protocols_is_an_error(how: str) -> None:
    data = head("101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade")
    with pytest.raises(ProtocolError, match="101"):
        await read(data, how)


@pytest.mark.parametrize("status", ["204 No Content", "304 Not Modified"])
async def test_no_body_after_204_or_304(how: str, status: str) -> None:
    """No body is read, even with a ``Content-Length`` (a 304's is the resource's)."""
    reply, reusable = await read(head(status, "Content-Length: 100"), how)
    assert reply == Reply(int(status[:3]), b"", None)
    assert reusable


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


CODINGS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "x-gzip": gzip.compress,
    "GZip": gzip.compress,
    "deflate": zlib.compress,  # zlib-wrapped, as the standard says
    "Deflate": _raw_deflate,  # raw, as some servers send
}


@pytest.mark.parametrize("coding", list(CODINGS))
async def test_a_compressed_body_is_decoded(how: str, coding: str) -> None:
    body = b'{"text": "%s"}' % (b"compressible " * 200)
    reply, reusable = await read(
        with_length(CODINGS[coding](body), f"Content-Encoding: {coding}"), how
    )
    assert reply == Reply(200, body, None)
    assert reusable


async def test_a_compressed_chunked_body_is_decoded(how: str) -> None:
    body = b"x" * 5000 + b"y" * 5000
    packed = gzip.compress(body)
    data = head("200 OK", "Content-Encoding: gzip", "Transfer-Encoding: chunked") + chunked(
        packed[:10], packed[10:30], packed[30:]
    )
    reply, _ = await read(data, how)
    assert reply.body == body


@pytest.mark.parametrize("coding", ["gzip", "x-gzip", "deflate"])
@pytest.mark.parametrize(
    "data",
    [
        head("200 OK", "Content-Encoding: {coding}", "Content-Length: 0"),
        head("200 OK", "Content-Encoding: {coding}", "Transfer-Encoding: chunked") + b"0\r\n\r\n",
        head("204 No Content", "Content-Encoding: {coding}"),
    ],
    ids=["Content-Length: 0", "no chunks", "204"],
)
async def test_an_empty_body_with_a_coding_is_empty(how: str, coding: str, data: bytes) -> None:
    reply, reusable = await read(data.replace(b"{coding}", coding.encode()), how)
    assert reply.body == b""
    assert reusable


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
async def test_an_empty_body_until_the_close_with_a_coding_is_empty(how: str, coding: str) -> None:
    reply, _ = await read(head("200 OK", f"Content-Encoding: {coding}"), how, close=True)
    assert reply == Reply(200, b"", None)


@pytest.mark.parametrize("coding", ["identity", "Identity", ""])
async def test_identity_is_not_decoded(how: str, coding: str) -> None:
    reply, _ = await read(with_length(OK, f"Content-Encoding: {coding}"), how)
    assert reply.body == OK


@pytest.mark.parametrize("coding", ["br", "zstd", "compress", "gzip, br"])
async def test_an_unknown_coding_is_refused(how: str, coding: str) -> None:
    with pytest.raises(ProtocolError, match="content coding"):
        await read(with_length(OK, f"Content-Encoding: {coding}"), how)


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
async def test_a_body_that_does_not_decode(how: str, coding: str) -> None:
    with pytest.raises(ProtocolError, match=f"the {coding} body does not decode"):
        await read(with_length(b"not compressed", f"Content-Encoding: {coding}"), how)


LIMIT = 1000  # the bound on bodies in the tests of it


@pytest.mark.parametrize("how_fed", ["bytewise", "7-byte pieces", "whole"])
@pytest.mark.parametrize(
    ("framing", "close"),
    [("Content-Length", False), ("chunked", False), ("until the close", True)],
)
@pytest.mark.parametrize("size", [LIMIT, LIMIT + 1])
async def test_a_body_longer_than_the_bound_is_refused(
    how_fed: str, framing: str, close: bool, size: int
) -> None:
    body = b"z" * size
    if framing == "Content-Length":
        data = with_length(body)
    elif framing == "chunked":
        data = head("200 OK", "Transfer-Encoding: chunked") + chunked(body[:400], body[400:])
    else:
        data = head("200 OK") + body
    piece = {"bytewise": 1, "7-byte pieces": 7, "whole": len(data)}[how_fed]
    reading = fed(pieces_of(data, piece), close=close, max_body_bytes=LIMIT)
    if size <= LIMIT:
        reply, _ = await reading
        assert reply.body == body
    else:
        with pytest.raises(ProtocolError, match=f"body is longer than {LIMIT} bytes"):
            await reading


async def test_a_content_length_over_the_bound_is_refused_before_the_body() -> None:
    with pytest.raises(ProtocolError, match=f"body is longer than {LIMIT} bytes"):
        await fed([head("200 OK", f"Content-Length: {LIMIT + 1}")], max_body_bytes=LIMIT)


@pytest.mark.parametrize("coding", list(CODINGS))
@pytest.mark.parametrize("size", [LIMIT, LIMIT + 1, 50 * LIMIT])
async def test_a_body_decoding_to_more_than_the_bound_is_refused(coding: str, size: int) -> None:
    body = b"\0" * size
    packed = CODINGS[coding](body)
    assert len(packed) < LIMIT
    reading = fed([with_length(packed, f"Content-Encoding: {coding}")], max_body_bytes=LIMIT)
    if size <= LIMIT:
        reply, _ = await reading
        assert reply.body == body
    else:
        with pytest.raises(ProtocolError, match=f"decodes to more than {LIMIT} bytes"):
            await reading


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
async def test_a_truncated_compressed_body_does_not_decode(coding: str) -> None:
    packed = CODINGS[coding](b"some text " * 100)[:-6]
    with pytest.raises(ProtocolError, match=f"the {coding} body does not decode"):
        await fed([with_length(packed, f"Content-Encoding: {coding}")])


_NOISE = random.Random(7).randbytes(100_000)  # incompressible: its gzip member is 100 KB
GZIP_PARTS = {
    "small": [b'{"text": "', b"first member " * 100, b'"}'],
    "large": [_NOISE, b"a middle member", _NOISE[::-1]],
}


@pytest.mark.parametrize("parts", list(GZIP_PARTS.values()), ids=list(GZIP_PARTS))
@pytest.mark.parametrize("padding", [b"", b"\0" * 5], ids=["adjacent", "zero-padded"])
async def test_a_gzip_body_of_several_members_is_decoded_whole(
    how: str, parts: list[bytes], padding: bytes
) -> None:
    """Every member, as ``gzip.decompress`` decodes them (zero bytes between and after them
    skipped)."""
    packed = padding.join(gzip.compress(part) for part in parts) + padding
    reply, reusable = await read(with_length(packed, "Content-Encoding: gzip"), how)
    assert reply == Reply(200, b"".join(parts), None)
    assert reply.body == gzip.decompress(packed)
    assert reusable


@pytest.mark.parametrize("after", [b"garbage", b"\x1f", b"\0\0junk", b"\n"])
@pytest.mark.parametrize("members", [1, 2])
async def test_bytes_after_the_last_gzip_member_are_refused(
    how: str, after: bytes, members: int
) -> None:
    packed = gzip.compress(b"one") * members + after
    with pytest.raises(ProtocolError, match="after its last member that do not start another"):
        await read(with_length(packed, "Content-Encoding: gzip"), how)


@pytest.mark.parametrize("pack", [zlib.compress, _raw_deflate], ids=["zlib", "raw"])
@pytest.mark.parametrize("after", [b"junk", b"\x00", zlib.compress(b"two")])
async def test_bytes_after_a_deflate_stream_are_refused(
    how: str, pack: Callable[[bytes], bytes], after: bytes
) -> None:
    """A deflate body is one compressed stream: bytes after its end are not dropped unseen."""
    packed = pack(b"one" * 50) + after
    with pytest.raises(ProtocolError, match="after the end of its compressed stream"):
        await read(with_length(packed, "Content-Encoding: deflate"), how)


async def test_a_truncated_second_gzip_member_does_not_decode() -> None:
    packed = gzip.compress(b"one") + gzip.compress(b"two" * 100)[:-3]
    with pytest.raises(ProtocolError, match="the gzip body does not decode"):
        await fed([with_length(packed, "Content-Encoding: gzip")])


@pytest.mark.parametrize("size", [LIMIT, LIMIT + 1, 50 * LIMIT])
async def test_the_bound_holds_for_the_gzip_members_together(size: int) -> None:
    first = b"\0" * (LIMIT // 2)
    body = first + b"\1" * (size - len(first))
    packed = gzip.compress(first) + gzip.compress(body[len(first) :])
    reading = fed([with_length(packed, "Content-Encoding: gzip")], max_body_bytes=LIMIT)
    if size <= LIMIT:
        reply, _ = await reading
        assert reply.body == body
    else:
        with pytest.raises(BodyTooLong, match=f"decodes to more than {LIMIT} bytes"):
            await reading


async def test_more_than_max_gzip_members_are_refused() -> None:
    member = gzip.compress(b"x")
    reply, _ = await fed([with_length(member * MAX_GZIP_MEMBERS, "Content-Encoding: gzip")])
    assert reply.body == b"x" * MAX_GZIP_MEMBERS
    too_many = member * (MAX_GZIP_MEMBERS + 1)
    with pytest.raises(ProtocolError, match=f"more than {MAX_GZIP_MEMBERS} members"):
        await fed([with_length(too_many, "Content-Encoding: gzip")])


async def test_the_pools_bound_on_bodies() -> None:
    """A decompression bomb through the pool: 64 MiB of zeros, some 64 KiB gzipped."""
    bomb = gzip.compress(bytes(64 * 1024 * 1024), 9)
    reply = response(bomb, headers=[("Content-Encoding", "gzip")])
    async with WireServer(per_connection(replying(reply), replying(response(OK)))) as server:
        pool = Pool(4, GUARD_S, GUARD_S, max_body_bytes=1024 * 1024)
        try:
            with pytest.raises(ProtocolError, match="decodes to more than 1048576 bytes"):
                await post(pool, server)
            assert pool.open_connections == 0  # a failed reply's connection is not kept
            assert await post(pool, server) == Reply(200, OK, None)
        finally:
            await pool.close()
    assert MAX_BODY == 256 * 1024 * 1024
    assert Pool(1, 1.0, 1.0).max_body_bytes == MAX_BODY


def _head_of_size(size: int) -> bytes:
    """A reply head (status line and headers, without the blank line) of ``size`` bytes."""
    start = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Pad: "
    return start + b"a" * (size - len(start))


@pytest.mark.parametrize("how_fed", ["socket", "whole"])
async def test_a_head_of_max_head_bytes_is_read(how_fed: str) -> None:
    data = _head_of_size(MAX_HEAD) + b"\r\n\r\nok"
    reply, _ = await read(data, how_fed)
    assert reply == Reply(200, b"ok", None)


@pytest.mark.parametrize("split", [1, 2, 3])
async def test_a_head_of_max_head_bytes_with_its_blank_line_split(split: int) -> None:
    """The blank line after a head of MAX_HEAD bytes arriving in two pieces: the head is
    read as when it came at once."""
    data = _head_of_size(MAX_HEAD) + b"\r\n\r\nok"
    cut = MAX_HEAD + split
    reply, _ = await fed([data[:cut], data[cut:]])
    assert reply == Reply(200, b"ok", None)


def _counting_heads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the calls of ``Connection._parse_head`` (each scans the head so far)."""
    calls: list[int] = []
    parse_head = Connection._parse_head

    def counted(self: Connection, buffer: bytes, pos: int) -> int:
        calls.append(len(buffer) - pos)
        return parse_head(self, buffer, pos)

    monkeypatch.setattr(Connection, "_parse_head", counted)
    return calls


@pytest.mark.parametrize("interim", [False, True])
async def test_a_head_fed_a_byte_at_a_time_is_scanned_once(
    monkeypatch: pytest.MonkeyPatch, interim: bool
) -> None:
    """A head of MAX_HEAD bytes arriving one byte per read (a slow or hostile server) is kept
    until its blank line comes and parsed then, not scanned again at every byte (which cost
    about a second of CPU per reply, quadratic in the head's size); an interim reply before it
    is read the same way."""
    calls = _counting_heads(monkeypatch)
    first = b"HTTP/1.1 100 Continue\r\n\r\n" if interim else b""
    data = first + _head_of_size(MAX_HEAD) + b"\r\n\r\nok"
    reply, _ = await fed(pieces_of(data, 1))
    assert reply == Reply(200, b"ok", None)
    assert len(calls) <= 16  # the first bytes, then once per head; not once per byte
    assert sum(calls) <= 3 * len(data)


async def test_a_long_trailer_fed_a_byte_at_a_time_is_parsed_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A chunked reply's trailer line arriving one byte per read is kept until its CRLF, as a
    head is; one over the bound is refused all the same."""
    parses: list[int] = []
    parse = Connection._parse

    def counted(self: Connection) -> None:
        parses.append(1)
        parse(self)

    monkeypatch.setattr(Connection, "_parse", counted)
    trailer = "X-Long: " + "t" * (MAX_HEAD - 100)
    data = head("200 OK", "Transfer-Encoding: chunked") + chunked(b"ok", trailers=(trailer,))
    start = data.index(b"X-Long")
    reply, _ = await fed([data[:start], *pieces_of(data[start:], 1)])
    assert reply == Reply(200, b"ok", None)
    assert len(parses) <= 8  # the first piece, the line's end, the blank line; not per byte
    too_long = head("200 OK", "Transfer-Encoding: chunked")
    too_long += chunked(b"ok", trailers=("X-Long: " + "t" * MAX_HEAD,))
    with pytest.raises(ProtocolError, match="trailers are too long"):
        await fed([too_long[:start], *pieces_of(too_long[start:], 1)])


async def test_a_head_over_max_head_fed_a_byte_at_a_time_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = _counting_heads(monkeypatch)
    data = _head_of_size(MAX_HEAD + 8)
    with pytest.raises(ProtocolError, match=f"head is longer than {MAX_HEAD} bytes"):
        await fed(pieces_of(data, 1))
    assert len(calls) <= 16


@pytest.mark.parametrize("how_fed", ["socket", "whole"])
async def test_a_head_longer_than_max_head_is_refused(how_fed: str) -> None:
    with pytest.raises(ProtocolError, match="longer than"):
        await read(_head_of_size(MAX_HEAD + 1) + b"\r\n\r\nok", how_fed)


@pytest.mark.parametrize("how_fed", ["socket", "whole"])
async def test_an_endless_head_is_refused_without_waiting_for_its_end(how_fed: str) -> None:
    """The server sends more than MAX_HEAD bytes of head and then nothing, without closing:
    the reply fails at once (no read timeout or close needed)."""
    with pytest.raises(ProtocolError, match="longer than"):
        await read(_head_of_size(MAX_HEAD + 8), how_fed)


@pytest.mark.parametrize("start", [b"SSH-2.0-OpenSSH_9.6\r\n", b"<html>", b"\x16\x03\x01\x02\x00"])
async def test_bytes_that_are_not_http_are_refused(how: str, start: bytes) -> None:
    with pytest.raises(ProtocolError, match="not HTTP"):
        await read(start, how)  # without the close: refused as soon as 5 bytes came


async def test_not_http_is_detected_after_five_bytes() -> None:
    with pytest.raises(ProtocolError, match="not HTTP"):
        await fed([b"SSH-2"])


@pytest.mark.parametrize(
    "data",
    [
        b"HTTP/2 200\r\n\r\n",
        b"HTTP/1.1 20 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\rX\r\n\r\n",
        b"HTTP/1.1  200 OK\r\n\r\n",
        b"HTTP/1.1 099 Low\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 000\r\nContent-Length: 0\r\n\r\n",
    ],
)
async def test_a_malformed_status_line_is_refused(how: str, data: bytes) -> None:
    with pytest.raises(ProtocolError, match="malformed status line"):
        await read(data, how)


@pytest.mark.parametrize(
    "line",
    [
        "no colon",
        ": no name",
        " Folded: value",
        "Bad Name: 1",
        "X(y): 1",
        "Server : t",
        "X-A: a\rb",
        "X-A: a\x00b",
        "X-A: a\r",
    ],
)
async def test_a_malformed_header_line_is_refused(how: str, line: str) -> None:
    """Not a field line, or a CR or NUL in its value (RFC 9110 section 5.5: rejected)."""
    with pytest.raises(ProtocolError, match="malformed header line"):
        await read(head("200 OK", "Content-Length: 2", line) + b"ok", how)


@pytest.mark.parametrize(
    "hidden", ["Transfer-Encoding: chunked", "Content-Length: 2"], ids=["chunked", "length"]
)
async def test_a_header_behind_a_bare_lf_is_refused(how: str, hidden: str) -> None:
    """A LF without its CR within a header line: a parser that ends lines there (as RFC 9112
    section 2.2 allows, h11 does) reads the hidden header and frames the body by it; this
    client ends lines at CRLF only, so it would read a value with a LF in it and the body to
    the close, chunk framing and bytes after the reply included. Refused instead."""
    data = head("200 OK", f"X-A: b\n{hidden}") + (
        chunked(b"ok") if "chunked" in hidden else b"okEXTRA"
    )
    with pytest.raises(ProtocolError, match=r"malformed header line|LF without a CR"):
        await read(data, how, close=True)


@pytest.mark.parametrize(
    "data",
    [
        b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\n\nok",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\nok",
        b"HTTP/1.1 200 OK\r\nServer: t\r\nX-A: 1\nContent-Length: 2\r\n",
    ],
    ids=["every line", "the blank line", "after an interim reply", "within a header line"],
)
async def test_a_head_with_a_bare_lf_is_refused_as_it_comes(how: str, data: bytes) -> None:
    """A head whose lines end with a LF alone has no CRLF CRLF to end it: refused as soon as
    the LF comes, not left waiting for a blank line that the server never sends (the server
    keeps the connection open: without the refusal the read times out)."""
    with pytest.raises(ProtocolError, match="LF without a CR"):
        await read(data, how)


# reuse: fed only, so that bytes after the reply come when the test says

FED = ["bytewise", "7-byte pieces", "whole"]


@pytest.mark.parametrize("how_fed", FED)
@pytest.mark.parametrize(
    ("data", "reusable"),
    [
        (with_length(OK), True),
        (with_length(OK, "Connection: keep-alive"), True),
        (with_length(OK, "Connection: close"), False),
        (with_length(OK, "Connection: Keep-Alive, Close"), False),
        (head("200 OK", "Content-Length: 2", version="HTTP/1.0") + b"ok", False),
        (
            head("200 OK", "Content-Length: 2", "Connection: keep-alive", version="HTTP/1.0")
            + b"ok",
            True,
        ),
        (with_length(OK) + b"HTTP/1.1 200 OK\r\n", False),
        (with_length(OK) + b"\r\n", False),
        (head("200 OK", "Transfer-Encoding: chunked") + chunked(b"ok"), True),
        (head("200 OK", "Transfer-Encoding: chunked") + chunked(b"ok") + b"x", False),
        (head("200 OK", "Transfer-Encoding: chunked", "Content-Length: 2") + chunked(b"ok"), False),
        (head("204 No Content") + b"x", False),
    ],
    ids=[
        "HTTP/1.1",
        "keep-alive",
        "close",
        "keep-alive, close",
        "HTTP/1.0",
        "HTTP/1.0 keep-alive",
        "bytes after the reply",
        "CRLF after the reply",
        "chunked",
        "bytes after the chunks",
        "chunked and Content-Length",
        "bytes after a 204",
    ],
)
async def test_whether_the_connection_is_reused(how_fed: str, data: bytes, reusable: bool) -> None:
    reply, reused = await read(data, how_fed)
    assert reply.status in (200, 204)
    assert reused is reusable


async def test_bytes_after_the_reply_arriving_later() -> None:
    """Bytes that come once the reply is whole (no request waiting) make the connection not
    reusable."""
    _, conn = await fed([with_length(OK)])
    assert conn.reusable
    conn.data_received(b"HTTP/1.1 200 OK\r\n")
    assert not conn.reusable


async def test_a_connection_reused_for_a_second_request() -> None:
    loop = asyncio.get_running_loop()
    conn = Connection(loop, GUARD_S)
    wire = _Wire(conn)
    conn.connection_made(wire)
    for body in (b"one", b"two"):
        asking = asyncio.ensure_future(conn.request(REQUEST))
        await asyncio.sleep(0)
        conn.data_received(with_length(body))
        assert await asking == Reply(200, body, None)
        assert conn.reusable
    assert bytes(wire.written) == REQUEST * 2


async def test_a_request_on_a_closed_connection() -> None:
    _, conn = await fed([with_length(OK)])
    conn.close()
    with pytest.raises(ReplyCutOff, match="closed before the request"):
        await conn.request(REQUEST)


# --- a valid reply split anywhere reads as the same reply


class Case(NamedTuple):
    data: bytes
    close: bool  # the server closes after the reply (framing until the close)
    reply: Reply
    reusable: bool


@st.composite
def valid_replies(draw: st.DrawFn) -> Case:
    status = draw(st.sampled_from([200, 201, 202, 400, 404, 429, 500, 503]))
    body = draw(st.binary(max_size=300) | st.builds(lambda n: b"ab" * n, st.integers(0, 2000)))
    version = draw(st.sampled_from(["HTTP/1.1", "HTTP/1.0"]))
    # no chunks in HTTP/1.0 (RFC 9112 section 6.1: a Transfer-Encoding there is refused)
    framings = ["length", "chunked", "close"] if version == "HTTP/1.1" else ["length", "close"]
    framing = draw(st.sampled_from(framings))
    coding = draw(st.sampled_from([None, "gzip", "deflate", "raw deflate", "empty"]))
    keep_alive = draw(st.booleans())
    retry_after = draw(st.none() | st.from_regex(r"[0-9]{1,3}", fullmatch=True))
    sent = {
        None: body,
        "gzip": gzip.compress(body),
        "deflate": zlib.compress(body),
        "raw deflate": _raw_deflate(body),
        "empty": b"",  # no body, said to be gzip
    }[coding]
    if coding == "empty":
        body, coding = b"", "gzip"
    headers = ["Content-Type: application/json"]
    headers += draw(st.lists(st.sampled_from(["X-A: 1", "Server: t", "X-Empty:"]), max_size=3))
    if coding is not None:
        headers.append("Content-Encoding: " + ("deflate" if "deflate" in coding else coding))
    if retry_after is not None:
        headers.append(f"Retry-After: {retry_after}")
    if keep_alive:
        headers.append("Connection: keep-alive")
    if framing == "length":
        name = draw(st.sampled_from(["Content-Length", "content-length", "CONTENT-LENGTH"]))
        headers.append(f"{name}: {len(sent)}")
        framed = sent
    elif framing == "chunked":
        headers.append("Transfer-Encoding: chunked")
        cuts = sorted(draw(st.lists(st.integers(0, len(sent)), max_size=6)))
        parts = [sent[a:b] for a, b in itertools.pairwise([0, *cuts, len(sent)])]
        framed = b""
        for part in parts:
            if part:
                extension = draw(st.sampled_from([b"", b";x", b";name=value", b" ;a=b"]))
                framed += b"%x%s\r\n%s\r\n" % (len(part), extension, part)
        trailers = draw(st.lists(st.sampled_from(["X-Sum: 1", "X-T: a b"]), max_size=2))
        framed += b"0\r\n" + "".join(f"{t}\r\n" for t in trailers).encode() + b"\r\n"
    else:
        framed = sent
    interim = head("100 Continue") if draw(st.booleans()) else b""
    data = interim + head(f"{status} Whatever", *headers, version=version) + framed
    reusable = framing != "close" and (version == "HTTP/1.1" or keep_alive)
    return Case(data, framing == "close", Reply(status, body, retry_after), reusable)


@st.composite
def splits(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """``data`` in pieces: cut at arbitrary points, or in pieces of one arbitrary size."""
    if draw(st.booleans()):
        size = draw(st.integers(1, max(len(data), 1)))
        return pieces_of(data, size)
    cuts = sorted(set(draw(st.lists(st.integers(1, max(len(data) - 1, 1)), max_size=30))))
    edges = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges) if data[a:b]]


@settings(max_examples=300)
@given(case=valid_replies(), data=st.data())
def test_a_valid_reply_split_anywhere(case: Case, data: st.DataObject) -> None:
    pieces = data.draw(splits(case.data))
    assert b"".join(pieces) == case.data

    async def main() -> tuple[tuple[Reply, bool], tuple[Reply, bool]]:
        whole, whole_conn = await fed([case.data], close=case.close)
        split, split_conn = await fed(pieces, close=case.close)
        return (whole, whole_conn.reusable), (split, split_conn.reusable)

    whole, split = asyncio.run(main())
    assert whole == (case.reply, case.reusable)
    assert split == whole


# --- pool.py


@asynccontextmanager
async def pooled(
    limit: int = 4, *, connect_timeout_s: float = GUARD_S, read_timeout_s: float = GUARD_S
) -> AsyncIterator[Pool]:
    pool = Pool(limit, connect_timeout_s, read_timeout_s)
    try:
        yield pool
    finally:
        await pool.close()


async def post(pool: Pool, server: WireServer, body: bytes = b"{}") -> Reply:
    target = target_of(server.url())
    assert target is not None
    with anyio.fail_after(GUARD_S):
        return await pool.post(target, request_head(target, {}), body)


async def until(condition: Callable[[], bool]) -> None:
    """Wait until ``condition()`` holds (a guard against a hang, not a timing check)."""
    with anyio.fail_after(GUARD_S):
        while not condition():  # noqa: ASYNC110 - the state polled has no event to wait on
            await asyncio.sleep(0.005)


def idle_connections(pool: Pool) -> list[Connection]:
    return [conn for conns in pool._idle.values() for conn in conns]


def held(release: asyncio.Event) -> Handler:
    """A handler that answers every request with OK once ``release`` is set."""

    async def handler(conn: Conn) -> None:
        while await conn.read_request() is not None:
            await release.wait()
            await conn.send(response(OK))

    return handler


def held_first(gates: list[asyncio.Event]) -> Handler:
    """Connection ``i`` answers its first request once ``gates[i]`` is set, any later one at
    once."""

    async def handler(conn: Conn) -> None:
        first = True
        while await conn.read_request() is not None:
            if first:
                await gates[conn.index].wait()
                first = False
            await conn.send(response(OK))

    return handler


async def test_an_idle_connection_is_reused() -> None:
    async with WireServer(replying(response(OK))) as server, pooled() as pool:
        for _ in range(3):
            assert await post(pool, server) == Reply(200, OK, None)
        assert server.accepted == 1
        assert len(server.conns[0].requests) == 3
        assert pool.open_connections == 1


async def test_the_newest_idle_connection_is_reused_first() -> None:
    gates = [asyncio.Event(), asyncio.Event()]
    async with WireServer(held_first(gates)) as server, pooled(2) as pool:
        first = asyncio.ensure_future(post(pool, server))
        second = asyncio.ensure_future(post(pool, server))
        await until(lambda: len(server.requests) == 2)
        gates[1].set()  # connection 1 answers first: it becomes idle first, the older one
        done, _ = await asyncio.wait({first, second}, return_when=asyncio.FIRST_COMPLETED)
        assert len(done) == 1
        gates[0].set()
        await asyncio.gather(first, second)
        await post(pool, server)
        assert [len(conn.requests) for conn in server.conns] == [2, 1]
        gates[0].clear()  # connection 0 is idle again, the newest: it takes the next one
        await post(pool, server)
        assert [len(conn.requests) for conn in server.conns] == [3, 1]


async def test_requests_wait_at_the_bound() -> None:
    release = asyncio.Event()
    async with WireServer(held(release)) as server, pooled(2) as pool:
        posts = [asyncio.ensure_future(post(pool, server)) for _ in range(5)]
        await until(lambda: len(server.requests) == 2)
        for _ in range(10):
            await asyncio.sleep(0)
        assert len(server.requests) == 2
        assert server.accepted == 2
        assert pool.open_connections == 2
        release.set()
        assert await asyncio.gather(*posts) == [Reply(200, OK, None)] * 5
        assert server.accepted == 2
        assert server.max_open == 2
        assert len(server.requests) == 5
        assert pool.open_connections == 2


async def test_the_oldest_idle_connection_to_another_server_is_dropped_at_the_bound() -> None:
    async with (
        WireServer(replying(response(b"a"))) as a,
        WireServer(replying(response(b"b"))) as b,
        WireServer(replying(response(b"c"))) as c,
        pooled(2) as pool,
    ):
        assert (await post(pool, a)).body == b"a"
        assert (await post(pool, b)).body == b"b"
        assert (await post(pool, c)).body == b"c"  # a's connection (the oldest idle) dropped
        with anyio.fail_after(GUARD_S):
            await a.conns[0].closed_by_client.wait()
        assert not b.conns[0].closed_by_client.is_set()
        assert pool.open_connections == 2
        assert (await post(pool, b)).body == b"b"
        assert b.accepted == 1


async def test_a_cancelled_waiter_passes_its_turn_on() -> None:
    release = asyncio.Event()
    async with WireServer(held(release)) as server, pooled(1) as pool:
        first = asyncio.ensure_future(post(pool, server))
        await until(lambda: len(server.requests) == 1)
        cancelled = asyncio.ensure_future(post(pool, server, b"cancelled"))
        waiting = asyncio.ensure_future(post(pool, server, b"waiting"))
        await asyncio.sleep(0)
        cancelled.cancel()
        release.set()
        assert await first == Reply(200, OK, None)
        assert await waiting == Reply(200, OK, None)
        assert cancelled.cancelled()
        assert [r.body for r in server.requests] == [b"{}", b"waiting"]
        assert server.accepted == 1
        assert pool.open_connections == 1


async def test_a_waiter_cancelled_after_its_turn_came_passes_it_on() -> None:
    """The waiter is cancelled after the connection was given to it, before it ran."""
    release = asyncio.Event()
    async with WireServer(held(release)) as server, pooled(1) as pool:
        cancelled: asyncio.Future[Reply] | None = None

        async def first_then_cancel() -> Reply:
            reply = await post(pool, server)
            assert cancelled is not None
            cancelled.cancel()  # its turn came as this post returned; it has not run yet
            return reply

        first = asyncio.ensure_future(first_then_cancel())
        await until(lambda: len(server.requests) == 1)
        cancelled = asyncio.ensure_future(post(pool, server, b"cancelled"))
        waiting = asyncio.ensure_future(post(pool, server, b"waiting"))
        await asyncio.sleep(0)
        release.set()
        assert await first == Reply(200, OK, None)
        assert await waiting == Reply(200, OK, None)
        assert cancelled.cancelled()
        assert [r.body for r in server.requests] == [b"{}", b"waiting"]
        assert server.accepted == 1
        assert pool.open_connections == 1


async def test_waiters_are_served_in_the_order_they_came() -> None:
    """At the bound, a caller posting back to back does not overtake the requests already
    waiting: each freed connection goes to the longest-waiting request."""
    release = asyncio.Event()
    async with WireServer(held(release)) as server, pooled(1) as pool:

        async def back_to_back() -> None:
            for i in range(8):
                await post(pool, server, b"loop %d" % i)

        looping = asyncio.ensure_future(back_to_back())
        await until(lambda: len(server.requests) == 1)
        waiters = []
        for name in (b"w1", b"w2", b"w3"):
            waiters.append(asyncio.ensure_future(post(pool, server, name)))
            await asyncio.sleep(0)  # this one waits in the pool before the next one comes
        release.set()
        with anyio.fail_after(GUARD_S):
            await asyncio.gather(looping, *waiters)
        assert [r.body for r in server.requests] == [
            b"loop 0",
            b"w1",
            b"w2",
            b"w3",
            *(b"loop %d" % i for i in range(1, 8)),
        ]
        assert server.accepted == 1


async def test_waiters_for_two_servers_are_served_in_the_order_they_came() -> None:
    """At the bound, a connection freed while another server's request waits first is
    closed to make room for that one."""
    release = asyncio.Event()
    async with (
        WireServer(held(release)) as a,
        WireServer(replying(response(OK))) as b,
        pooled(1) as pool,
    ):
        first = asyncio.ensure_future(post(pool, a, b"a1"))
        await until(lambda: len(a.requests) == 1)
        order: list[str] = []

        async def posting(server: WireServer, name: str) -> None:
            await post(pool, server, name.encode())
            order.append(name)

        waiters = []
        for server, name in ((b, "b1"), (a, "a2"), (b, "b2")):
            waiters.append(asyncio.ensure_future(posting(server, name)))
            await asyncio.sleep(0)
        release.set()
        with anyio.fail_after(GUARD_S):
            await asyncio.gather(first, *waiters)
        assert order == ["b1", "a2", "b2"]
        assert (a.accepted, b.accepted) == (2, 2)
        assert pool.open_connections == 1


async def test_a_waiter_cancelled_after_a_place_came_passes_it_on() -> None:
    """At the bound, the connection to ``a`` freed is closed to give its place to the first
    waiter, for ``b``; that one is cancelled before it ran: the place goes to the next."""
    release = asyncio.Event()
    async with (
        WireServer(held(release)) as a,
        WireServer(replying(response(OK))) as b,
        pooled(1) as pool,
    ):
        cancelled: asyncio.Future[Reply] | None = None

        async def first_then_cancel() -> Reply:
            reply = await post(pool, a)
            assert cancelled is not None
            cancelled.cancel()
            return reply

        first = asyncio.ensure_future(first_then_cancel())
        await until(lambda: len(a.requests) == 1)
        cancelled = asyncio.ensure_future(post(pool, b, b"cancelled"))
        waiting = asyncio.ensure_future(post(pool, b, b"waiting"))
        await asyncio.sleep(0)
        release.set()
        assert await first == Reply(200, OK, None)
        assert await waiting == Reply(200, OK, None)
        assert cancelled.cancelled()
        assert [r.body for r in b.requests] == [b"waiting"]
        assert pool.open_connections == 1
        await a.all_closed_by_client()


async def test_a_place_given_to_a_cancelled_waiter_is_freed() -> None:
    release = asyncio.Event()
    async with (
        WireServer(held(release)) as a,
        WireServer(replying(response(OK))) as b,
        pooled(1) as pool,
    ):
        cancelled: asyncio.Future[Reply] | None = None

        async def first_then_cancel() -> None:
            await post(pool, a)
            assert cancelled is not None
            cancelled.cancel()

        first = asyncio.ensure_future(first_then_cancel())
        await until(lambda: len(a.requests) == 1)
        cancelled = asyncio.ensure_future(post(pool, b))
        await asyncio.sleep(0)
        release.set()
        await first
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        assert pool.open_connections == 0
        assert b.accepted == 0
        assert await post(pool, b) == Reply(200, OK, None)
        assert pool.open_connections == 1


async def test_a_connection_given_closed_is_replaced() -> None:
    """The connection given to a waiter closes before the waiter runs (as when the server
    closes it then): the waiter opens a new one in its place."""
    release = asyncio.Event()
    async with WireServer(held(release)) as server, pooled(1) as pool:

        async def first_then_close() -> None:
            await post(pool, server)
            (given,) = pool._open  # given to the waiter, which has not run yet
            given.close()

        first = asyncio.ensure_future(first_then_close())
        await until(lambda: len(server.requests) == 1)
        waiting = asyncio.ensure_future(post(pool, server, b"waiting"))
        await asyncio.sleep(0)
        release.set()
        await first
        assert await waiting == Reply(200, OK, None)
        assert server.accepted == 2
        assert [len(conn.requests) for conn in server.conns] == [1, 1]
        assert pool.open_connections == 1


async def test_a_pool_closed_while_a_place_is_given() -> None:
    release = asyncio.Event()
    async with (
        WireServer(held(release)) as a,
        WireServer(replying(response(OK))) as b,
    ):
        pool = Pool(1, GUARD_S, GUARD_S)

        async def first_then_close() -> None:
            await post(pool, a)
            await pool.close()  # the waiter for b was given a place, and has not run yet

        first = asyncio.ensure_future(first_then_close())
        await until(lambda: len(a.requests) == 1)
        waiting = asyncio.ensure_future(post(pool, b))
        await asyncio.sleep(0)
        release.set()
        await first
        with pytest.raises(RuntimeError, match="closed"):
            await waiting
        assert pool.open_connections == 0
        assert b.accepted == 0


async def test_an_idle_connection_is_not_reused_after_idle_s(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pool_module, "IDLE_S", 0.05)
    async with WireServer(replying(response(OK))) as server, pooled() as pool:
        await post(pool, server)
        await asyncio.sleep(0.1)  # longer than IDLE_S
        await post(pool, server)
        assert server.accepted == 2
        assert [len(conn.requests) for conn in server.conns] == [1, 1]
        with anyio.fail_after(GUARD_S):
            await server.conns[0].closed_by_client.wait()
        assert pool.open_connections == 1
        await post(pool, server)  # within IDLE_S: reused
        assert server.accepted == 2


async def test_an_idle_connection_the_server_closed_is_not_reused() -> None:
    async with WireServer(replying(response(OK), then_close=True)) as server, pooled() as pool:
        await post(pool, server)
        await until(lambda: all(conn.closed for conn in idle_connections(pool)))
        assert await post(pool, server) == Reply(200, OK, None)
        assert server.accepted == 2
        assert [len(conn.requests) for conn in server.conns] == [1, 1]


async def test_a_connection_not_reusable_is_closed() -> None:
    async with (
        WireServer(replying(response(OK, headers=[("Connection", "close")]))) as server,
        pooled() as pool,
    ):
        await post(pool, server)
        await post(pool, server)
        assert server.accepted == 2
        await server.all_closed_by_client()
        assert pool.open_connections == 0


async def test_a_failed_connect_frees_its_place() -> None:
    async with WireServer(replying(response(OK))) as server, pooled(1) as pool:
        target = target_of(f"http://127.0.0.1:{free_port()}/x")
        assert target is not None
        with pytest.raises(ConnectionRefusedError):
            await pool.post(target, request_head(target, {}), b"{}")
        assert pool.open_connections == 0
        assert await post(pool, server) == Reply(200, OK, None)


async def test_close() -> None:
    release = asyncio.Event()
    async with WireServer(held(release)) as server:
        pool = Pool(1, GUARD_S, GUARD_S)
        busy = asyncio.ensure_future(post(pool, server))
        await until(lambda: len(server.requests) == 1)
        waiting = asyncio.ensure_future(post(pool, server))
        await asyncio.sleep(0)
        await pool.close()
        assert pool.open_connections == 0
        with pytest.raises(ReplyCutOff):
            await busy
        with pytest.raises(RuntimeError, match="closed"):
            await waiting
        with pytest.raises(RuntimeError, match="closed"):
            await post(pool, server)
        release.set()  # the handler reads on, and sees the client's close
        await server.all_closed_by_client()
        assert server.accepted == 1


async def test_close_closes_idle_connections() -> None:
    async with WireServer(replying(response(OK))) as server:
        pool = Pool(4, GUARD_S, GUARD_S)
        await post(pool, server)
        await pool.close()
        await server.all_closed_by_client()
        assert pool.open_connections == 0


async def test_an_unclosed_pool_warns_and_closes_its_connections() -> None:
    async with WireServer(replying(response(OK))) as server:
        pools = [Pool(4, GUARD_S, GUARD_S)]
        await post(pools[0], server)
        with pytest.warns(ResourceWarning, match=r"Unclosed HTTP client pool with 1 open"):
            pools.clear()  # the last reference: __del__ runs
        await server.all_closed_by_client()


async def test_a_closed_pool_does_not_warn() -> None:
    async with WireServer(replying(response(OK))) as server:
        pool = Pool(4, GUARD_S, GUARD_S)
        await post(pool, server)
        await pool.close()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            del pool
            gc.collect()
        assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


@pytest.mark.parametrize("limit", [0, -1])
def test_a_pool_without_room_is_refused_and_deleted_quietly(
    limit: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``Pool(0)`` raises in ``__init__``; ``__del__`` on the half-made pool then raises
    nothing (it would be printed as "Exception ignored in ...")."""
    unraisable: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    with pytest.raises(ValueError, match="at least 1"):
        Pool(limit, 1.0, 1.0)
    gc.collect()
    assert [(u.exc_type, str(u.exc_value)) for u in unraisable] == []


# --- failures.py: how the client's failures are classified


async def test_a_reply_cut_off_is_classified() -> None:
    async def half(conn: Conn) -> None:
        await conn.read_request()
        await conn.send(response(OK)[:-3])

    async with WireServer(half) as server, pooled() as pool:
        with pytest.raises(ReplyCutOff) as caught:
            await post(pool, server)
    failure = classify(caught.value)
    assert failure.cause is AttemptCause.CONNECTION
    assert str(failure).startswith("reply cut off: ReplyCutOff: ")
    assert failure.retryable
    assert pool.open_connections == 0


async def test_a_read_timeout_is_classified() -> None:
    async def silent(conn: Conn) -> None:
        await conn.read_request()
        await conn.until_client_closes()

    async with WireServer(silent) as server, pooled(read_timeout_s=0.05) as pool:
        with pytest.raises(ReadTimeout, match="no data from the server") as caught:
            await post(pool, server)
        await server.all_closed_by_client()
        assert pool.open_connections == 0
    failure = classify(caught.value)
    assert failure.cause is AttemptCause.TIMEOUT
    assert failure.retryable


async def test_a_connection_timeout_is_classified() -> None:
    async with WireServer(replying(response(OK))) as server, pooled(connect_timeout_s=0) as pool:
        with pytest.raises(ConnectionTimeout, match="took over 0 s") as caught:
            await post(pool, server)
        assert pool.open_connections == 0
    failure = classify(caught.value)
    assert failure.cause is AttemptCause.TIMEOUT
    assert failure.retryable


@pytest.mark.parametrize(
    "reply",
    [
        response(b"z" * (LIMIT + 1)),
        response(gzip.compress(bytes(50 * LIMIT)), headers=[("Content-Encoding", "gzip")]),
    ],
    ids=["as-sent", "once-decoded"],
)
async def test_a_body_over_the_bound_is_classified_not_retryable(reply: bytes) -> None:
    """The same server would send it again, and each try reads (and inflates) up to the bound."""
    async with WireServer(replying(reply)) as server:
        pool = Pool(4, GUARD_S, GUARD_S, max_body_bytes=LIMIT)
        try:
            with pytest.raises(ProtocolError) as caught:
                await post(pool, server)
        finally:
            await pool.close()
    failure = classify(caught.value)
    assert failure is caught.value
    assert (failure.cause, failure.retryable) == (AttemptCause.PROTOCOL, False)
    assert f"than {LIMIT} bytes, the client's bound (max_body_bytes)" in str(failure)


def test_reply_cut_off_and_read_timeout_are_classified() -> None:
    cut = classify(ReplyCutOff("the server closed the connection"))
    assert (cut.cause, cut.retryable) == (AttemptCause.CONNECTION, True)
    assert str(cut) == "reply cut off: ReplyCutOff: the server closed the connection"
    late = classify(ReadTimeout("no data"))
    assert (late.cause, late.retryable) == (AttemptCause.TIMEOUT, True)
    assert classify(ConnectionTimeout("slow")).cause is AttemptCause.TIMEOUT


def test_a_parse_error_of_aiohttp_is_a_retryable_protocol_failure() -> None:
    url = URL("http://127.0.0.1:1/x")
    info = aiohttp.RequestInfo(url, "POST", CIMultiDictProxy(CIMultiDict()), url)
    error = aiohttp.ClientResponseError(info, (), status=400, message="Invalid header value")
    failure = classify(error)
    assert isinstance(failure, ProtocolError)
    assert failure.cause is AttemptCause.PROTOCOL
    assert failure.retryable
    assert "the reply is not valid HTTP" in str(failure)
    assert "Invalid header value" in str(failure)


async def test_a_cancellation_as_the_connection_opens_is_not_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A request cancelled in the very step its connection is made ends cancelled (Python
    3.11's ``asyncio.wait_for`` returned the connection then and dropped the cancellation, so
    the request went on), and the connection it opened is not left open."""
    async with WireServer(replying(response(OK))) as server, pooled() as pool:
        loop = asyncio.get_running_loop()
        opening = loop.create_connection
        requests: list[asyncio.Task[Reply]] = []

        async def cancelled_as_it_opens(*args: Any, **kwargs: Any) -> Any:
            made = await opening(*args, **kwargs)
            requests[0].cancel()  # the request's task, while the connection's is finishing
            return made

        monkeypatch.setattr(loop, "create_connection", cancelled_as_it_opens)
        requests.append(asyncio.ensure_future(post(pool, server)))
        with pytest.raises(asyncio.CancelledError):
            await requests[0]
        assert requests[0].cancelled()
        assert server.requests == []  # nothing was sent on it
        assert pool.open_connections == 0
