"""The own HTTP/1.1 reply parser (:mod:`agentkit.models.http1.connection`) checked against h11,
a strict pure-Python HTTP/1.1 implementation used here as a client-side parser.

Hypothesis draws replies that are valid or slightly malformed (status lines, header lines,
framing, interim replies, 204/304 with a body); each is read by h11 and by a
:class:`~agentkit.models.http1.connection.Connection` fed whole, in random pieces and, when
short, a byte at a time, with or without the server's close after it. No reply has a
``Content-Encoding`` (the parser decodes gzip and deflate, h11 does not), so both give the body
as sent. The properties:

* the reply read in pieces is the one read whole (the same reply, the same failure class, or
  both still waiting for more bytes);
* the parser fails only with its typed failures (a ``ProtocolError``, a ``ReplyCutOff``);
* a reply with one of the :data:`REFUSED` traits (a smuggling shape, or a message the RFC says
  is invalid) is refused with a ``ProtocolError``, whatever h11 makes of it;
* when h11 reads status S and body B, the parser reads ``Reply(S, B, ...)``, unless the reply has
  one of the :data:`STRICTER` traits: then it refuses it with a ``ProtocolError``;
* where the parser reads a reply, or waits for more, and h11 does something else, the reply has
  one of the :data:`LENIENT` traits (the RFC allows what h11 refuses); where the parser refuses
  a reply h11 still waits for, one of the :data:`STRICTER` traits;
* a reply framed both by ``Transfer-Encoding`` and ``Content-Length`` is read by the former and
  leaves the connection not reusable (RFC 9112 section 6.3, item 3; section 6.1).

Each generated reply carries the names of the traits drawn into it (``Case.traits``), so a
failing example says why it was expected to agree or not; each trait says what the RFC says of
it and has an example, checked on its own by :func:`test_each_trait_as_documented`.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import NamedTuple

import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentkit.models.failures import ProtocolError, ReplyCutOff
from agentkit.models.http1 import Reply
from agentkit.models.http1.connection import Connection
from tests.models.test_http1 import GUARD_S, REQUEST, _Wire, pieces_of, splits

# --- the traits of a generated reply where the parser and h11 may disagree, and why


class Trait(NamedTuple):
    why: str  # what the RFC says of it, and what each parser does
    example: bytes  # a reply with it (the server closes the connection after it)
    reply: Reply | None = None  # what the parser reads from ``example``, if it reads a reply


def _reply(*lines: str, body: bytes = b"", start: str = "HTTP/1.1 200 OK") -> bytes:
    return "\r\n".join([start, *lines, "", ""]).encode("latin-1") + body


_CHUNKED = "Transfer-Encoding: chunked"

# h11 reads the reply; the parser refuses it with a ProtocolError
STRICTER = {
    "obs-fold": Trait(
        "RFC 9112 section 5.2: obsolete line folding; the parser refuses a folded header line "
        "(as hyper and llhttp do), h11 unfolds it. The section asks a user agent to replace an "
        "obs-fold with SP: refusing is the stricter choice",
        _reply("X-A: a", " b", "Content-Length: 2", body=b"ok"),
    ),
    "Content-Length list": Trait(
        "RFC 9110 section 8.6: a Content-Length of a list of equal values (``2, 2``): a "
        "recipient MAY reject the message as invalid or replace the list with one value; the "
        "parser rejects it, h11 replaces it",
        _reply("Content-Length: 2, 2", body=b"ok"),
    ),
    "other HTTP version": Trait(
        "RFC 9112 section 2.3: the parser takes HTTP/1.0 and HTTP/1.1 only, h11 any digit.digit "
        "(HTTP/2.0 too); a higher minor version (HTTP/1.2) SHOULD be read as 1.1: refused",
        _reply("Content-Length: 2", body=b"ok", start="HTTP/1.2 200 OK"),
    ),
    "long chunk size": Trait(
        "RFC 9112 section 7.1: recipients MUST anticipate large hexadecimal numerals; the parser "
        "takes at most 16 hex digits (leading zeros included), h11 up to 20",
        _reply(_CHUNKED, body=b"00000000000000002\r\nok\r\n0\r\n\r\n"),
    ),
}

# the parser refuses the reply with a ProtocolError, whatever h11 does
REFUSED = {
    "conflicting Content-Length": Trait(
        "RFC 9110 section 8.6, RFC 9112 section 6.3 item 5: different Content-Length values are "
        "invalid framing, an unrecoverable error (a response-splitting shape); h11 refuses too",
        _reply("Content-Length: 2", "Content-Length: 3", body=b"okk"),
    ),
    "invalid Content-Length": Trait(
        "RFC 9112 section 6.3 item 5: without a Transfer-Encoding, an invalid Content-Length is "
        "an unrecoverable error; h11 refuses too",
        _reply("Content-Length: +2", body=b"ok"),
    ),
    "bad field name": Trait(
        "RFC 9110 section 5.1, RFC 9112 section 5.1: a field name is a token, and no whitespace "
        "is allowed between it and the colon; h11 refuses too",
        _reply("Server : t", "Content-Length: 2", body=b"ok"),
    ),
    "CR, LF or NUL in a field": Trait(
        "RFC 9110 section 5.5, RFC 9112 section 2.2: a recipient of CR, LF or NUL within a field "
        "value MUST reject the message or replace them with SP; the parser rejects it (a header "
        "behind a bare LF would frame the body otherwise than a parser that ends the line there "
        "reads it); h11 refuses too",
        _reply("X-A: a\rb", "Content-Length: 2", body=b"ok"),
    ),
    "malformed status line": Trait(
        "RFC 9112 section 4: status-line = HTTP-version SP status-code SP [ reason-phrase ], "
        "status-code = 3DIGIT; h11 refuses too",
        _reply("Content-Length: 2", body=b"ok", start="HTTP/1.1 2000 OK"),
    ),
    "status under 100": Trait(
        "RFC 9110 section 15: all valid status codes are within 100..599 (a client SHOULD "
        "process another as a 5xx): under 100 refused, where the transport would take 099 for "
        "a success (600..999 are read, as error statuses); h11 refuses under 100 too",
        _reply("Content-Length: 2", body=b"ok", start="HTTP/1.1 099 Low"),
    ),
    "malformed chunk": Trait(
        "RFC 9112 section 7.1: chunk-size = 1*HEXDIG, a chunk's data ends with CRLF; h11 "
        "refuses too",
        _reply(_CHUNKED, body=b"0x2\r\nok\r\n0\r\n\r\n"),
    ),
    "malformed trailer": Trait(
        "RFC 9112 section 7.1.2: trailer-section = *( field-line CRLF ); h11 refuses too",
        _reply(_CHUNKED, body=b"2\r\nok\r\n0\r\nno colon\r\n\r\n"),
    ),
    "transfer coding not decoded": Trait(
        "RFC 9112 sections 6.1 and 6.3: chunked once and last frames the body, else the close "
        "does and the body is coded by codings the parser does not decode (gzip, deflate, "
        "unknown, chunked not last): refused rather than returned still coded, or with its "
        "chunk framing in it; h11 refuses any Transfer-Encoding but chunked",
        _reply("Transfer-Encoding: chunked, identity", body=b"2\r\nok\r\n0\r\n\r\n"),
    ),
    "HTTP/1.0 with Transfer-Encoding": Trait(
        "RFC 9112 section 6.1: a client that receives an HTTP/1.0 message with a "
        "Transfer-Encoding MUST treat the message as if the framing is faulty (an unrecoverable "
        "error, section 6.3 item 5), even with a Content-Length; h11 reads it by chunks",
        _reply(_CHUNKED, body=b"2\r\nok\r\n0\r\n\r\n", start="HTTP/1.0 200 OK"),
    ),
    "bare LF": Trait(
        "RFC 9112 section 2.2: a recipient MAY recognize a single LF as a line terminator; the "
        "parser does not, so a LF without its CR in a head is within the status line or a field "
        "value (RFC 9110 section 5.5: rejected), refused as soon as it comes, not left waiting "
        "for a CRLF that may never come; h11 ends the line there",
        b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
    ),
    "bare LF in a trailer": Trait(
        "RFC 9112 sections 2.2 and 7.1.2: a trailer line ends as a head's line does; h11 ends "
        "the line (and the trailers) there",
        _reply(_CHUNKED, body=b"2\r\nok\r\n0\r\n\n"),
    ),
}

# h11 refuses the reply; the parser reads it, as the RFC allows
LENIENT = {
    "BWS before a chunk extension": Trait(
        "RFC 9112 section 7.1.1: chunk-ext = *( BWS ';' BWS chunk-ext-name ... ): whitespace "
        "before the ';' is allowed; h11 refuses it",
        _reply(_CHUNKED, body=b"2 ;a=b\r\nok\r\n0\r\n\r\n"),
        Reply(200, b"ok", None),
    ),
    "identity transfer coding": Trait(
        "RFC 9112 section 6.3 item 3: a Transfer-Encoding without chunked last delimits the body "
        "by the close; ``identity`` (a no-op, from RFC 2616) is the one such coding the parser "
        "takes, as it takes ``identity, chunked`` as chunked; h11 takes only ``chunked``",
        _reply("Transfer-Encoding: identity", body=b"ok"),
        Reply(200, b"ok", None),
    ),
    "control in a field value": Trait(
        "RFC 9110 section 5.5: CTLs other than CR, LF and NUL in a field value are invalid, but "
        "recipients MAY retain them; h11 refuses some (VT, FF)",
        _reply("Retry-After: 1\x0b", "Content-Length: 2", body=b"ok"),
        Reply(200, b"ok", "1\x0b"),
    ),
    "control in the reason": Trait(
        "RFC 9112 section 4: a client SHOULD ignore the reason-phrase; h11 refuses some CTLs in it",
        _reply("Content-Length: 2", body=b"ok", start="HTTP/1.1 200 O\x0bK"),
        Reply(200, b"ok", None),
    ),
    "Transfer-Encoding over an invalid Content-Length": Trait(
        "RFC 9112 section 6.3 item 3: a Transfer-Encoding overrides the Content-Length (and the "
        "connection is not reused); h11 checks the overridden value and refuses it",
        _reply(_CHUNKED, "Content-Length: abc", body=b"2\r\nok\r\n0\r\n\r\n"),
        Reply(200, b"ok", None),
    ),
    "no framing for a 204 or 304": Trait(
        "RFC 9112 section 6.3 item 1: a 204 or 304 ends after its head whatever its framing "
        "headers say; h11 still checks Content-Length and Transfer-Encoding in it",
        _reply("Content-Length: abc", start="HTTP/1.1 304 Not Modified"),
        Reply(304, b"", None),
    ),
}


class Case(NamedTuple):
    data: bytes
    close: bool  # the server closes the connection after ``data``
    traits: frozenset[str]  # from STRICTER, REFUSED, LENIENT, or "both framings"


# --- the replies drawn


def _rarely(odds: int) -> st.SearchStrategy[bool]:
    """True about once in ``odds + 1`` draws (``st.integers(0, odds) == 0`` would be true far
    more often: hypothesis favours the ends of a range)."""
    return st.sampled_from([False] * odds + [True])


def _status_line(draw: st.DrawFn, status: int, traits: set[str]) -> bytes:
    version = draw(st.sampled_from(["HTTP/1.1"] * 16 + ["HTTP/1.0"] * 6 + ["HTTP/1.2", "HTTP/2.0"]))
    if version in ("HTTP/1.2", "HTTP/2.0"):
        traits.add("other HTTP version")
    reasons = ["OK", "", "Whatever", "a reason, with: punctuation", "tab\there", " lead", "end "]
    reason = draw(st.sampled_from([*reasons * 3, "caf\xe9", None, "ctl\x0bin it"]))
    if reason is not None and "\x0b" in reason:
        traits.add("control in the reason")
    code = f"{status:03d}"
    if draw(_rarely(30)):  # not a status line
        code = draw(st.sampled_from(["20", "2000", " 200", "2x0"]))
        traits.add("malformed status line")
    text = f"{version} {code}" if reason is None else f"{version} {code} {reason}"
    return text.encode("latin-1")


def _end(draw: st.DrawFn, traits: set[str], trait: str = "bare LF") -> bytes:
    """A line's end in a head (or trailers): CRLF, rarely a bare LF (``trait``)."""
    if draw(_rarely(60)):
        traits.add(trait)
        return b"\n"
    return b"\r\n"


_HEADER_NAMES = ["Server", "X-A", "x-request-id", "CONTENT-TYPE", "Retry-After", "Link", "X-Empty"]
_VALUES = ["t", "1", "a b", "application/json", '"quoted; x=1"', "", "caf\xe9"]


def _other_header(draw: st.DrawFn, traits: set[str]) -> bytes:
    """One header line that does not frame the body: plain, with whitespace around its value,
    or (rarely) folded or malformed."""
    kind = draw(st.sampled_from(["plain"] * 24 + ["fold", "name", "value", "control"]))
    name = draw(st.sampled_from(_HEADER_NAMES))
    value = draw(st.sampled_from(_VALUES))
    before, after = (
        draw(st.sampled_from(["", " ", "  ", "\t", " \t "])),
        draw(st.sampled_from(["", " ", "\t"])),
    )
    line = f"{name}:{before}{value}{after}"
    if kind == "fold":
        traits.add("obs-fold")
        line += draw(st.sampled_from(["\r\n folded", "\r\n\tmore"]))
    elif kind == "name":
        traits.add("bad field name")
        line = draw(st.sampled_from(["X A: 1", "X(y): 1", "Server : t", "X\x00: 1", ": x", "no"]))
    elif kind == "value":
        traits.add("CR, LF or NUL in a field")
        line = draw(st.sampled_from(["X-A: a\rb", "X-A: a\x00b", "X-A: a\r"]))
    elif kind == "control":
        line = draw(st.sampled_from(["X-A: a\x01b", "X-A: \x7f", "X-A: a\x0bb", "X-A: \x0c"]))
        if "\x0b" in line or "\x0c" in line:
            traits.add("control in a field value")
    return line.encode("latin-1")


def _head(draw: st.DrawFn, status: int, framing: list[bytes], traits: set[str]) -> bytes:
    """A whole head: the status line, ``framing`` and other header lines in any order, the
    blank line."""
    lines = framing + [_other_header(draw, traits) for _ in range(draw(st.integers(0, 3)))]
    lines = draw(st.permutations(lines))
    out = _status_line(draw, status, traits) + _end(draw, traits)
    for line in lines:
        out += line + _end(draw, traits)
    return out + _end(draw, traits)


def _chunk_size(draw: st.DrawFn, size: int, traits: set[str]) -> bytes:
    form = draw(st.sampled_from(["lower"] * 4 + ["upper", "zeros", "long", "bad"]))
    digits = {"lower": f"{size:x}", "upper": f"{size:X}"}.get(form, f"{size:x}")
    if form == "zeros":
        digits = digits.rjust(draw(st.integers(len(digits), 16)), "0")
    elif form == "long":
        digits = digits.rjust(draw(st.integers(17, 20)), "0")
        traits.add("long chunk size")
    elif form == "bad":
        digits = draw(st.sampled_from([f"0x{size:x}", f"-{size:x}", f" {size:x}", "", "g"]))
        traits.add("malformed chunk")
    extension = draw(
        st.sampled_from(["", "", ";x", ";name=value", ';q="a;b"', ";a;b=c", " ", " ;a=b", "\t;a"])
    )
    if extension.startswith((" ;", "\t;")):
        traits.add("BWS before a chunk extension")
    return (digits + extension).encode("latin-1")


def _chunked(draw: st.DrawFn, body: bytes, traits: set[str]) -> bytes:
    """``body`` in chunks cut anywhere, the last chunk and trailers; rarely malformed."""
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=4)))
    out = b""
    for part in (body[a:b] for a, b in itertools.pairwise([0, *cuts, len(body)])):
        if part:
            end = b"\r\n"
            if draw(_rarely(30)):
                end = draw(st.sampled_from([b"\n", b"XX", b""]))
                traits.add("malformed chunk")
            out += _chunk_size(draw, len(part), traits) + b"\r\n" + part + end
    out += draw(st.sampled_from([b"0", b"000", b"0;last"])) + b"\r\n"
    for _ in range(draw(st.integers(0, 2))):
        trailer = draw(st.sampled_from(["X-Sum: 1", "X-T: a b", "x-empty:"] * 2 + ["no colon"]))
        if trailer == "no colon":
            traits.add("malformed trailer")
        out += trailer.encode() + _end(draw, traits, "bare LF in a trailer")
    return out + _end(draw, traits, "bare LF in a trailer")


_FRAMINGS = [
    "length",
    "length",
    "length list",
    "length conflict",
    "length invalid",
    "length short",
    "length long",
    "chunked",
    "chunked",
    "both framings",
    "coded",
    "identity",
    "close",
    "close",
]


_CODED = [
    ["gzip, chunked"],
    ["chunked, identity"],
    ["chunked, chunked"],
    ["chunked", "chunked"],
    ["gzip", "chunked"],
    ["deflate"],
    ["x-custom, chunked"],
    ["chunked, gzip"],
]


class Framing(NamedTuple):
    lines: list[str]  # the header lines that frame the body
    framed: bytes  # the body as sent
    ignored: bool  # framing headers a 204 or 304 ignores and h11 still checks


def _framing(draw: st.DrawFn, body: bytes, no_body: bool, traits: set[str]) -> Framing:
    """How ``body`` is framed: its framing header lines and the bytes sent (a 204 or 304 sends
    them too, as a body nobody should read)."""
    kind = draw(st.sampled_from(_FRAMINGS))
    length = draw(st.sampled_from(["Content-Length", "content-length", "CONTENT-LENGTH"]))
    if kind == "length":
        value = str(len(body)).rjust(draw(st.integers(1, 4)), "0")
        return Framing([f"{length}: {value}"] * draw(st.integers(1, 2)), body, False)
    if kind == "length list":
        traits.add("Content-Length list")
        return Framing([f"{length}: {len(body)}, {len(body)}"], body, True)
    if kind == "length conflict":
        if draw(st.booleans()):  # two headers: refused as the head is read, whatever the status
            traits.add("conflicting Content-Length")
            return Framing([f"{length}: {len(body)}", f"{length}: {len(body) + 1}"], body, False)
        if not no_body:  # one list, refused as the body's length is read
            traits.add("conflicting Content-Length")
        return Framing([f"{length}: {len(body)}, {len(body) + 1}"], body, True)
    if kind == "length invalid":
        if not no_body:
            traits.add("invalid Content-Length")
        value = draw(st.sampled_from(["abc", "-1", "+2", "1e3", "0x10", "2 2", ""]))
        return Framing([f"{length}: {value}"], body, True)
    if kind in ("length short", "length long"):  # the body framed is not all there is
        shift = draw(st.integers(1, 5))
        size = max(len(body) - shift, 0) if kind == "length short" else len(body) + shift
        return Framing([f"{length}: {size}"], body, False)
    if kind in ("chunked", "both framings"):
        chunked = draw(st.sampled_from(["chunked", "Chunked", "CHUNKED", " chunked "]))
        framed = _chunked(draw, body, traits)
        if kind == "chunked":
            return Framing([f"Transfer-Encoding: {chunked}"], framed, False)
        traits.add("both framings")
        value = draw(st.sampled_from([str(len(body)), str(len(framed)), "7", "abc"]))
        if value == "abc":
            traits.add("Transfer-Encoding over an invalid Content-Length")
        lines = [f"Transfer-Encoding: {chunked}", f"{length}: {value}"]
        return Framing(lines, framed, value == "abc")
    if kind == "coded":
        if not no_body:
            traits.add("transfer coding not decoded")
        codings = draw(st.sampled_from(_CODED))
        lines = [f"Transfer-Encoding: {coding}" for coding in codings]
        chunks = ", ".join(codings).endswith("chunked")
        return Framing(lines, _chunked(draw, body, traits) if chunks else body, True)
    if kind == "identity":
        traits.add("identity transfer coding")
        coding = draw(st.sampled_from(["identity", "identity, chunked", "Identity"]))
        chunks = coding.endswith("chunked")
        framed = _chunked(draw, body, traits) if chunks else body
        return Framing([f"Transfer-Encoding: {coding}"], framed, True)
    return Framing([], body, False)  # by the close


@st.composite
def replies(draw: st.DrawFn) -> Case:
    """A reply, valid or slightly malformed, with the traits drawn into it."""
    traits: set[str] = set()
    data = b""
    for _ in range(draw(st.integers(0, 2))):  # interim replies, with a header or not
        data += _head(draw, draw(st.sampled_from([100, 102, 103])), [], traits)
    status = draw(st.sampled_from([200] * 4 + [201, 204, 304, 400, 429, 500, 503, 599, 999, 99]))
    no_body = status in (204, 304)
    if status == 99:
        traits.add("status under 100")
    body = draw(
        st.binary(max_size=40)
        | st.sampled_from([b"", b"ok", b"\r\n\r\n", b"0\r\n\r\n", b"HTTP/1.1 200 OK\r\n\r\n"])
    )
    framing = _framing(draw, body, no_body, traits)
    reply_head = _head(draw, status, [line.encode() for line in framing.lines], traits)
    coded = any(line.startswith("Transfer-Encoding") for line in framing.lines)
    if reply_head.startswith(b"HTTP/1.0") and coded and not no_body:
        traits.add("HTTP/1.0 with Transfer-Encoding")
    if no_body:  # a 204 or 304 has no body: its framing is not read, nor what follows
        if framing.ignored:
            traits.add("no framing for a 204 or 304")
        traits -= {
            "malformed chunk",
            "malformed trailer",
            "long chunk size",
            "bare LF in a trailer",
        }
    close = draw(st.booleans()) if framing.lines else not draw(_rarely(4))  # by the close
    return Case(data + reply_head + framing.framed, close, frozenset(traits))


# --- the two parsers

WAITING = "waiting"  # no whole reply yet, no failure: the parser waits for more bytes


class H11Reply(NamedTuple):
    status: int
    body: bytes


def h11_read(data: bytes, close: bool) -> H11Reply | str:
    """The final reply h11 reads from ``data`` (then the close if ``close``) as the client of
    a POST, or ``"refused"``, or :data:`WAITING`."""
    conn = h11.Connection(h11.CLIENT)
    request = h11.Request(
        method="POST", target="/x", headers=[("Host", "h"), ("Content-Length", "2")]
    )
    for event in (request, h11.Data(data=b"{}"), h11.EndOfMessage()):
        conn.send(event)
    status = 0
    body: list[bytes] = []
    try:
        conn.receive_data(data)
        if close:
            conn.receive_data(b"")
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return WAITING
            if isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return H11Reply(status, b"".join(body))
            elif isinstance(event, h11.ConnectionClosed):
                return "refused"
    except h11.ProtocolError:
        return "refused"


class Read(NamedTuple):
    """What the parser made of a reply: the reply, the failure, or :data:`WAITING`; and
    whether the connection was left reusable."""

    outcome: Reply | Exception | str
    reusable: bool

    def kind(self) -> object:
        """The outcome to compare across feeds: the reply, the failure's class, or waiting."""
        return type(self.outcome) if isinstance(self.outcome, Exception) else self.outcome


async def agentkit_read(pieces: list[bytes], close: bool) -> Read:
    """What a connection reads from ``pieces`` (each one ``data_received`` call), then the
    server's close if ``close``; checked without waiting: feeding is synchronous, so once the
    loop has run the request's steps the reply is there, or a failure, or it is not whole."""
    conn = Connection(asyncio.get_running_loop(), GUARD_S)
    wire = _Wire(conn)
    conn.connection_made(wire)
    asking = asyncio.ensure_future(conn.request(REQUEST))
    await asyncio.sleep(0)  # the request written and its reply awaited
    for piece in pieces:
        if wire.is_closing():  # the connection failed: a real transport delivers no more
            break
        conn.data_received(piece)
    if close and not wire.is_closing() and not conn.eof_received():
        wire.close()
    for _ in range(5):  # the request's task resumed, the close's connection_lost called
        await asyncio.sleep(0)
    if not asking.done():
        asking.cancel()
        return Read(WAITING, conn.reusable)
    failure = asking.exception()
    if failure is not None:
        if not isinstance(failure, (ProtocolError, ReplyCutOff)):
            raise failure  # not a typed failure: the test fails with it
        return Read(failure, conn.reusable)
    return Read(asking.result(), conn.reusable)


def _explained(traits: frozenset[str], allowed: dict[str, Trait]) -> bool:
    return bool(traits & allowed.keys())


def check(case: Case, whole: Read, split: Read, bytewise: Read | None) -> None:
    """The properties of the module's docstring, for one reply."""
    assert split.kind() == whole.kind(), (split, whole)
    if bytewise is not None:
        assert bytewise.kind() == whole.kind(), (bytewise, whole)
    got = whole.outcome
    if _explained(case.traits, REFUSED):
        assert isinstance(got, ProtocolError), got
        return
    expected = h11_read(case.data, case.close)
    if isinstance(expected, H11Reply):
        if isinstance(got, Reply):
            assert (got.status, got.body) == expected
        else:
            assert _explained(case.traits, STRICTER), (got, expected)
            assert isinstance(got, ProtocolError), got
    elif isinstance(got, Reply) or got == WAITING:
        if got != expected:
            assert _explained(case.traits, LENIENT), (got, expected)
    elif expected == WAITING:  # refused where h11 waits for more bytes
        assert _explained(case.traits, STRICTER), (got, expected)
    if "both framings" in case.traits and isinstance(got, Reply) and got.status not in (204, 304):
        assert not whole.reusable


@settings(max_examples=1000, deadline=None)
@given(case=replies(), data=st.data())
def test_the_parser_agrees_with_h11(case: Case, data: st.DataObject) -> None:
    pieces = data.draw(splits(case.data))
    assert b"".join(pieces) == case.data

    async def main() -> tuple[Read, Read, Read | None]:
        whole = await agentkit_read([case.data], case.close)
        split = await agentkit_read(pieces, case.close)
        short = len(case.data) <= 400
        bytewise = await agentkit_read(pieces_of(case.data, 1), case.close) if short else None
        return whole, split, bytewise

    check(case, *asyncio.run(main()))


_TRAITS = [
    (kind, trait)
    for kind, traits in (("stricter", STRICTER), ("refused", REFUSED), ("lenient", LENIENT))
    for trait in traits.values()
]
_TRAIT_NAMES = [name for traits in (STRICTER, REFUSED, LENIENT) for name in traits]


@pytest.mark.parametrize(("kind", "trait"), _TRAITS, ids=_TRAIT_NAMES)
def test_each_trait_as_documented(kind: str, trait: Trait) -> None:
    """Each trait's example, read whole and a byte at a time with the server's close after it:
    a stricter one is read by h11 and refused by the parser, a refused one refused by the
    parser, a lenient one refused by h11 and read by the parser as its trait says."""

    async def main() -> tuple[Read, Read]:
        whole = await agentkit_read([trait.example], True)
        return whole, await agentkit_read(pieces_of(trait.example, 1), True)

    whole, bytewise = asyncio.run(main())
    assert bytewise.kind() == whole.kind()
    reference = h11_read(trait.example, True)
    if kind == "stricter":
        assert isinstance(reference, H11Reply)
    if kind in ("stricter", "refused"):
        assert isinstance(whole.outcome, ProtocolError)
    else:
        assert reference == "refused"
        assert whole.outcome == trait.reply
