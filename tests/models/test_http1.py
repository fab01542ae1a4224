"""Unit tests of the transport's own HTTP/1.1 client (:mod:`agentkit.models.http1`): which URLs
and headers it takes (request.py), how one connection reads a reply (connection.py), how the
pool shares connections (pool.py), and how its failures are classified (failures.py).

The parser is fed a reply either over a real socket pair (the bytes written at once) or by
calling the protocol's ``data_received`` with pieces of a chosen size, so a reply split anywhere
can be checked; the pool runs against the raw-socket servers of :mod:`tests.models.wire_servers`.
"""

from __future__ import annotations

import pytest

from agentkit.models.http1 import Target, request_head, target_of

pytestmark = pytest.mark.anyio


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
