"""One connection of the own HTTP/1.1 client: an :class:`asyncio.Protocol` that writes a request
and reads its whole reply, framed by ``Content-Length``, by chunks (extensions read and ignored,
trailer lines checked as header lines and ignored) or by the server closing the connection (the
transfer codings taken: ``chunked``, last, and the no-op ``identity``; none in an HTTP/1.0
reply), decoding gzip (every member, up to :data:`MAX_GZIP_MEMBERS`, as ``gzip.decompress``
does) and deflate (one stream, nothing after it). Interim 1xx replies are skipped, up to
:data:`MAX_INTERIM` before the final one; 204 and 304 have no body. A head or trailer line
arriving in pieces is kept apart until its end comes and parsed once. A head's and the trailers'
lines end at CRLF only: a LF without its CR (refused as it comes) and a CR or NUL in a header
value are not HTTP to this client. Bytes that are not HTTP (more interim replies, bytes after a
deflate stream or after a gzip body's last member that start no other) raise
:class:`~agentkit.models.failures.ProtocolError`, a reply cut short
:class:`~agentkit.models.failures.ReplyCutOff`, silence longer than the read timeout
:class:`~agentkit.models.failures.ReadTimeout`, and a body longer than its bound
(:data:`MAX_BODY` by default), as sent or once decoded, a
:class:`~agentkit.models.failures.BodyTooLong` (a ``ProtocolError`` not retried). A connection
is reused only if the reply allowed it and nothing came after the reply."""

from __future__ import annotations

import asyncio
import re
import zlib
from typing import NamedTuple

from agentkit.models.failures import BodyTooLong, ProtocolError, ReadTimeout, ReplyCutOff
from agentkit.models.http1.request import TOKEN

__all__ = ["MAX_BODY", "MAX_GZIP_MEMBERS", "MAX_HEAD", "MAX_INTERIM", "Connection", "Reply"]

MAX_HEAD = 64 * 1024  # the longest status line and headers accepted in a reply
MAX_BODY = 256 * 1024 * 1024  # the default bound on a body, as sent and once decoded
MAX_INTERIM = 32  # the most interim (1xx) replies accepted before the final one
MAX_GZIP_MEMBERS = 1024  # the most members of a gzip body (each costs a decompressor)
_MAX_CHUNK_LINE = 4096  # a chunk-size line with its extensions


class Reply(NamedTuple):
    """A whole reply: its status, its body (decoded if it was compressed) and its
    ``Retry-After`` header."""

    status: int
    body: bytes
    retry_after: str | None


# a status from 100 (RFC 9110 section 15: under it there is none, valid or not, to act on)
_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([1-9][0-9]{2})(?: [^\r\n]*)?\Z")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(?:;[^\r\n]*)?\Z")
_BARE_LF = re.compile(rb"(?<!\r)\n")  # a LF without its CR: not a line's end to this client
_NOT_IN_A_VALUE = re.compile(rb"[\r\n\x00]")
_HEAD, _LENGTH, _CHUNK_LINE, _CHUNK_DATA, _TRAILERS, _UNTIL_CLOSE, _IDLE = range(7)


class Connection(asyncio.Protocol):
    """One HTTP/1.1 connection, one request at a time: :meth:`request` writes it and returns
    the whole reply, or raises why there is none."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        read_timeout_s: float,
        max_body_bytes: int = MAX_BODY,
    ) -> None:
        self._loop = loop
        self._read_timeout_s = read_timeout_s
        self._max_body = max_body_bytes  # a longer body (as sent, or decoded) is refused
        self._received = 0  # the body bytes framed by chunks or the close so far
        self._interim = 0  # the interim (1xx) replies to this request so far
        self._transport: asyncio.Transport | None = None
        self.closed = False
        self.reusable = True  # false once the reply says so, or bytes came beyond it
        self.idle_since = 0.0
        self._state = _IDLE
        self._reply: asyncio.Future[Reply] | None = None
        self._buffer = b""
        # a head arriving in pieces without its blank line yet: the pieces after ``_buffer``
        # (kept apart, joined and parsed once the blank line comes) and their size
        self._more: list[bytes] = []
        self._more_size = 0
        self._pieces: list[bytes] = []
        self._remaining = 0
        self._status = 0
        self._retry_after: str | None = None
        self._encoding: str | None = None
        self._last_data = 0.0
        self._timer: asyncio.TimerHandle | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        if self._reply is None or self._reply.done():
            self.reusable = False  # bytes nobody asked for: the connection's state is unknown
            return
        self._last_data = self._loop.time()
        try:
            if self._state == _LENGTH and not self._buffer:
                self._take_length(data, 0)  # a body arriving in pieces: straight to the body
            elif (self._more or self._pending_start()) and self._still_pending(data):
                pass  # kept until the line's end comes: no rescan and copy per piece
            else:
                if self._more:  # the end of the pending line came: joined once
                    self._buffer = b"".join([self._buffer, *self._more, data])
                    self._more, self._more_size = [], 0
                else:
                    self._buffer = self._buffer + data if self._buffer else data
                self._parse()
        except ProtocolError as exc:
            self._fail(exc)

    def eof_received(self) -> bool:
        self.reusable = False
        if self._reply is not None and not self._reply.done():
            if self._state == _UNTIL_CLOSE:
                try:
                    self._finish()
                except ProtocolError as exc:
                    self._fail(exc)
            else:
                self._fail(ReplyCutOff(self._cut_off_text()))
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        self._transport = None
        self._stop_timer()
        if self._reply is not None and not self._reply.done():
            if exc is None and self._state == _UNTIL_CLOSE:
                try:
                    self._finish()
                except ProtocolError as broken:
                    self._fail(broken)
                return
            self._fail(ReplyCutOff(self._cut_off_text() + (f" ({exc})" if exc else "")))

    # the request

    async def request(self, data: bytes) -> Reply:
        transport = self._transport
        if transport is None or self.closed:
            raise ReplyCutOff("the connection was closed before the request was sent")
        reply: asyncio.Future[Reply] = self._loop.create_future()
        self._reply = reply
        self._state = _HEAD
        self._received = 0
        self._interim = 0
        self._last_data = self._loop.time()
        self._timer = self._loop.call_at(self._last_data + self._read_timeout_s, self._due)
        transport.write(data)
        try:
            return await reply
        finally:
            self._stop_timer()
            self._reply = None
            self._state = _IDLE
            self._buffer = b""
            self._more, self._more_size = [], 0
            self._pieces = []

    def close(self) -> None:
        self.reusable = False
        if self._transport is not None:
            self._transport.close()
        self.closed = True

    # the reply

    def _parse(self) -> None:
        buffer = self._buffer
        pos = 0
        size = len(buffer)
        while pos < size or self._state == _TRAILERS:
            state = self._state
            if state == _HEAD:
                taken = self._parse_head(buffer, pos)
                if taken < 0:
                    break
                pos = taken
            elif state == _LENGTH:
                self._take_length(buffer, pos)
                return
            elif state == _CHUNK_LINE:
                end = buffer.find(b"\r\n", pos)
                if end < 0:
                    if size - pos > _MAX_CHUNK_LINE:
                        raise ProtocolError("a chunk-size line is too long")
                    break
                match = _CHUNK_SIZE.match(buffer, pos, end)
                if match is None:
                    raise ProtocolError(f"a malformed chunk-size line: {buffer[pos:end][:200]!r}")
                pos = end + 2
                self._remaining = int(match[1], 16)
                self._received += self._remaining
                if self._received > self._max_body:
                    raise self._too_long()
                self._state = _CHUNK_DATA if self._remaining else _TRAILERS
            elif state == _CHUNK_DATA:
                if self._remaining:
                    take = min(self._remaining, size - pos)
                    self._pieces.append(buffer[pos : pos + take])
                    pos += take
                    self._remaining -= take
                    if self._remaining:
                        break
                if size - pos < 2:
                    break
                if buffer[pos : pos + 2] != b"\r\n":
                    raise ProtocolError("a chunk does not end with CRLF")
                pos += 2
                self._state = _CHUNK_LINE
            elif state == _TRAILERS:
                end = buffer.find(b"\r\n", pos)
                if end < 0:
                    if size - pos > MAX_HEAD:
                        raise ProtocolError("the trailers are too long")
                    _refuse_bare_lf(buffer, pos, "trailers")
                    break
                line_was_blank = end == pos
                if not line_was_blank:
                    _field(buffer[pos:end])  # checked as a header line is, then ignored
                pos = end + 2
                if line_was_blank:  # the blank line after the trailers (which are ignored)
                    self._buffer = buffer[pos:]
                    self._finish()
                    return
            elif state == _UNTIL_CLOSE:
                self._received += size - pos
                if self._received > self._max_body:
                    raise self._too_long()
                self._pieces.append(buffer[pos:])
                pos = size
            else:
                break
        self._buffer = buffer[pos:] if pos else buffer

    def _pending_start(self) -> bool:
        """Whether ``_buffer`` holds the start of a head (already checked to start as HTTP) or
        of a trailer line, still without its end: what comes next may be kept apart."""
        if self._state == _HEAD:
            return len(self._buffer) >= 5
        return self._state == _TRAILERS and bool(self._buffer)

    def _still_pending(self, data: bytes) -> bool:
        """Whether ``data`` leaves the head (or trailer line) begun in ``_buffer`` still without
        its end (the blank line; a trailer's CRLF): it is then kept in ``_more``, refused once
        too long, as :meth:`_parse` refuses it, and parsed with the rest when the end comes."""
        head = self._state == _HEAD
        end = b"\r\n\r\n" if head else b"\r\n"
        # the last bytes so far (pieces may be shorter than that) and the new ones: an end
        # across the join shows in them
        seam = (self._buffer[-3:] + b"".join(self._more[-3:]))[-3:] + data
        if end in seam:
            return False
        _refuse_bare_lf(seam, len(seam) - len(data), "head" if head else "trailers")
        self._more.append(data)
        self._more_size += len(data)
        size = len(self._buffer) + self._more_size
        if head and size > MAX_HEAD + 3:
            raise ProtocolError(f"the reply's head is longer than {MAX_HEAD} bytes")
        if not head and size > MAX_HEAD:
            raise ProtocolError("the trailers are too long")
        return True

    def _take_length(self, data: bytes, pos: int) -> None:
        """Body bytes framed by ``Content-Length``, from ``data[pos:]``."""
        take = min(self._remaining, len(data) - pos)
        self._pieces.append(data[pos : pos + take] if pos or take < len(data) else data)
        self._remaining -= take
        self._buffer = data[pos + take :] if pos + take < len(data) else b""
        if not self._remaining:
            self._finish()

    def _parse_head(self, buffer: bytes, pos: int) -> int:
        """Read the status line and headers from ``buffer[pos:]`` when they are all there
        (an interim 1xx reply is skipped, up to :data:`MAX_INTERIM` of them): where the body
        starts, or -1 while more bytes are needed."""
        if len(buffer) - pos >= 5 and buffer[pos : pos + 5] != b"HTTP/":
            raise ProtocolError(f"the reply is not HTTP: {buffer[pos : pos + 80]!r}")
        end = buffer.find(b"\r\n\r\n", pos)
        if end < 0:
            _refuse_bare_lf(buffer, pos, "head")
        if end < 0 or end - pos > MAX_HEAD:
            # without the blank line: refused once it can no longer end a head of MAX_HEAD
            if end >= 0 or len(buffer) - pos > MAX_HEAD + 3:
                raise ProtocolError(f"the reply's head is longer than {MAX_HEAD} bytes")
            return -1
        lines = buffer[pos:end].split(b"\r\n")
        status_line = _STATUS_LINE.match(lines[0])
        if status_line is None:
            raise ProtocolError(f"a malformed status line: {lines[0][:200]!r}")
        minor, status = status_line[1], int(status_line[2])
        headers = _headers(lines[1:])
        body_at = end + 4
        if 100 <= status < 200:
            if status == 101:
                raise ProtocolError("the server switched protocols (101)")
            self._interim += 1
            if self._interim > MAX_INTERIM:
                raise ProtocolError(f"more than {MAX_INTERIM} interim (1xx) replies to one request")
            return body_at  # an interim reply: the real one follows
        self._status = status
        self._retry_after = headers.get("retry-after")
        self._encoding = _encoding_of(headers.get("content-encoding"))
        connection = headers.get("connection", "").lower()
        if "close" in connection or (minor == b"0" and "keep-alive" not in connection):
            self.reusable = False
        transfer = headers.get("transfer-encoding")
        length = headers.get("content-length")
        if status in (204, 304):
            self._buffer = buffer[body_at:]
            self._finish()
        elif transfer is not None:
            if minor == b"0":  # faulty framing (RFC 9112 section 6.1): HTTP/1.0 has none
                raise ProtocolError("an HTTP/1.0 reply has a Transfer-Encoding")
            if length is not None:
                self.reusable = False  # both framings: do not trust what follows the reply
            if _by_chunks(transfer):
                self._state = _CHUNK_LINE
            else:
                self._until_close()
        elif length is not None:
            self._remaining = _content_length(length)
            if self._remaining > self._max_body:
                raise self._too_long()
            self._state = _LENGTH
            if not self._remaining:
                self._buffer = buffer[body_at:]
                self._finish()
        else:
            self._until_close()
        return body_at

    def _until_close(self) -> None:
        self.reusable = False
        self._state = _UNTIL_CLOSE

    def _finish(self) -> None:
        """The reply is whole: resolve the request with it (``self._buffer`` holds what came
        after it)."""
        pieces = self._pieces
        body = b"".join(pieces) if len(pieces) != 1 else pieces[0]
        body = _decoded(body, self._encoding, self._max_body)
        if self._buffer:
            self.reusable = False  # bytes after the reply
        self._state = _IDLE
        reply = self._reply
        if reply is not None and not reply.done():
            reply.set_result(Reply(self._status, body, self._retry_after))

    def _fail(self, exc: Exception) -> None:
        self.reusable = False
        self._state = _IDLE
        reply = self._reply
        if reply is not None and not reply.done():
            reply.set_exception(exc)
        self.close()

    def _too_long(self) -> BodyTooLong:
        return BodyTooLong("the reply's body is longer than", self._max_body)

    def _cut_off_text(self) -> str:
        if self._state == _HEAD:
            got = len(self._buffer)
            return f"the server closed the connection before a whole reply head ({got} bytes)"
        return "the server closed the connection before the whole reply body"

    # the read timeout: one timer, moved on when data came since it was set

    def _due(self) -> None:
        self._timer = None
        if self._reply is None or self._reply.done():
            return
        deadline = self._last_data + self._read_timeout_s
        if deadline - self._loop.time() > 0.001:
            self._timer = self._loop.call_at(deadline, self._due)
            return
        self._fail(ReadTimeout(f"no data from the server for {self._read_timeout_s:g} s"))

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _refuse_bare_lf(data: bytes, pos: int, where: str) -> None:
    """Refuse a LF in ``data[pos:]``, a part of a head (or trailer line) without its end yet,
    that has no CR before it (the byte before ``pos`` counts): this client ends a head's and
    the trailers' lines at CRLF only, so the LF would be within a line, where it is refused once
    the line is whole (a parser that ends lines at a LF alone, as RFC 9112 section 2.2 allows,
    reads other lines); refused as it comes, not after waiting for an end that may never
    come."""
    if _BARE_LF.search(data, pos) is not None:
        raise ProtocolError(f"a LF without a CR before it in the reply's {where}")


def _headers(lines: list[bytes]) -> dict[str, str]:
    """The reply's headers by lower-cased name (repeated ones joined with commas, as HTTP
    allows; ``Content-Length`` values must agree), each line checked by :func:`_field`."""
    headers: dict[str, str] = {}
    for line in lines:
        key, text = _field(line)
        if key in headers:
            if key == "content-length" and headers[key] != text:
                raise ProtocolError("the reply has different Content-Length values")
            if key != "content-length":
                headers[key] += ", " + text
        else:
            headers[key] = text
    return headers


def _field(line: bytes) -> tuple[str, str]:
    """A header (or trailer) line's lower-cased name and its value without the whitespace
    around it. A name that is not a token (whitespace before the colon, a folded line's leading
    whitespace) and a CR, LF or NUL in the value are refused (RFC 9110 section 5.5: a bare LF
    there may be another parser's line end)."""
    name, colon, value = line.partition(b":")
    text = name.decode("latin-1")
    if not colon or not TOKEN.match(text) or _NOT_IN_A_VALUE.search(value):
        raise ProtocolError(f"a malformed header line: {line[:200]!r}")
    return text.lower(), value.strip(b" \t").decode("latin-1")


def _by_chunks(transfer: str) -> bool:
    """Whether a reply's ``Transfer-Encoding`` frames its body by chunks (``chunked`` once and
    last, after nothing but no-op ``identity`` codings) or by the close (``identity`` codings
    only, or none). Any other (gzip, deflate, unknown codings; chunked twice, or not last, which
    leaves its framing in a body read to the close) is refused: this client decodes no other
    transfer coding, and would return the body still coded (RFC 9112 sections 6.1, 6.3)."""
    codings = [coding.strip(" \t") for coding in transfer.lower().split(",")]
    codings = [coding for coding in codings if coding]  # empty list elements do not count
    others = [coding for coding in codings if coding != "identity"]
    if not others:
        return False
    if others == ["chunked"] and codings[-1] == "chunked":
        return True
    raise ProtocolError(
        f"the reply has a transfer coding this client does not decode: {transfer[:100]!r}"
    )


def _content_length(value: str) -> int:
    # ASCII digits only: str.isdigit is also true of others (the superscripts in Latin-1)
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise ProtocolError(f"an invalid Content-Length: {value[:50]!r}")
    return int(value)


def _encoding_of(value: str | None) -> str | None:
    if value is None:
        return None
    coding = value.strip().lower()
    if coding in ("", "identity"):
        return None
    if coding in ("gzip", "x-gzip", "deflate"):
        return coding
    raise ProtocolError(f"the reply has a content coding this client does not decode: {value!r}")


def _decoded(body: bytes, encoding: str | None, limit: int) -> bytes:
    if encoding is None or not body:  # an empty body, coded or not, is empty
        return body
    try:
        if encoding == "deflate":
            try:
                return _inflate(body, zlib.MAX_WBITS, limit)  # zlib-wrapped, as the standard says
            except zlib.error:
                return _inflate(body, -zlib.MAX_WBITS, limit)  # raw, as some servers send
        return _gunzip(body, limit)
    except zlib.error as exc:
        raise ProtocolError(f"the {encoding} body does not decode: {exc}") from exc


def _inflate(body: bytes, wbits: int, limit: int) -> bytes:
    """``body``, one compressed stream, decompressed; refused once it would be longer than
    ``limit`` bytes (a decompression bomb stops there, not once memory is exhausted), and when
    bytes follow the stream's end (``zlib.decompress`` would drop them unseen)."""
    decoded, end = _inflate_stream(body, 0, wbits, limit)
    if len(decoded) > limit:
        raise BodyTooLong("the reply's body decodes to more than", limit)
    if end < len(body):
        raise ProtocolError(
            f"the deflate body has {len(body) - end} bytes after the end of its compressed stream"
        )
    return decoded


_GZIP = zlib.MAX_WBITS | 16  # wbits of a gzip member: its header and trailer checked
_GZIP_MAGIC = b"\x1f\x8b"
_NOT_ZERO = re.compile(rb"[^\x00]")
_PIECE = 64 * 1024  # compressed bytes inflated per call (at most what a stream's end copies)


def _gunzip(body: bytes, limit: int) -> bytes:
    """Every gzip member of ``body`` decompressed, one after the other, as ``gzip.decompress``
    does (zero bytes between and after members skipped); refused once all of them together
    would be longer than ``limit`` bytes, when bytes after the last member do not start
    another, and past :data:`MAX_GZIP_MEMBERS` members."""
    members: list[bytes] = []
    produced = 0
    pos = 0
    while True:
        member, pos = _inflate_stream(body, pos, _GZIP, limit - produced)
        produced += len(member)
        if produced > limit:
            raise BodyTooLong("the reply's body decodes to more than", limit)
        members.append(member)
        found = _NOT_ZERO.search(body, pos)
        if found is None:  # the end, or zero padding to it
            return b"".join(members) if len(members) != 1 else member
        pos = found.start()
        if not body.startswith(_GZIP_MAGIC, pos):
            raise ProtocolError(
                f"the gzip body has {len(body) - pos} bytes after its last member that do not "
                "start another"
            )
        if len(members) == MAX_GZIP_MEMBERS:
            raise ProtocolError(f"the gzip body has more than {MAX_GZIP_MEMBERS} members")


def _inflate_stream(body: bytes, pos: int, wbits: int, room: int) -> tuple[bytes, int]:
    """The compressed stream that starts at ``body[pos]`` decompressed, cut once longer than
    ``room`` bytes (the caller refuses it then), and where in ``body`` it ends; a stream that
    does not end raises ``zlib.error``. ``body`` is fed in pieces of :data:`_PIECE` bytes, so
    the bytes after the stream that zlib copies out are at most that many."""
    inflater = zlib.decompressobj(wbits)
    view = memoryview(body)
    size = len(body)
    pieces: list[bytes] = []
    left = room + 1  # output allowed: one byte past the room says it is over
    while pos < size:
        piece = view[pos : pos + _PIECE]
        pos += len(piece)
        decoded = inflater.decompress(piece, left)
        pieces.append(decoded)
        left -= len(decoded)
        if not left:  # over the room (the input past it is not read)
            break
        if inflater.eof:
            pos -= len(inflater.unused_data)
            break
    else:
        raise zlib.error("incomplete or truncated stream")
    return b"".join(pieces) if len(pieces) != 1 else pieces[0], pos
