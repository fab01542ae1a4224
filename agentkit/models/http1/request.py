"""The request side of the own HTTP/1.1 client: which URLs it takes, and the bytes of a POST's
head (validated once per URL and header set, then reused)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NamedTuple
from urllib.parse import urlsplit

__all__ = ["Target", "request_head", "target_of"]


class Target(NamedTuple):
    """Where a URL's requests go: the address to connect to, and the request line's target
    and ``Host`` header."""

    host: str
    port: int
    path: bytes
    host_header: bytes


_TARGETS: dict[str, Target | None] = {}
_MAX_TARGETS = 1024


def target_of(url: str) -> Target | None:
    """The target of a plain ``http://`` URL, or ``None`` for one this client does not take
    (another scheme, credentials, a host or path that is not ASCII, a bad port, a space or an
    ASCII control character anywhere)."""
    try:
        return _TARGETS[url]
    except KeyError:
        pass
    target = _parse_target(url)
    if len(_TARGETS) < _MAX_TARGETS:
        _TARGETS[url] = target
    return target


# ASCII controls and space: urlsplit drops some (tab, CR, LF, leading ones) and keeps others,
# which would reach the request line
_NOT_IN_URL = re.compile(r"[\x00-\x20\x7f]")


def _parse_target(url: str) -> Target | None:
    if not url.isascii() or _NOT_IN_URL.search(url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname
    if parts.scheme != "http" or not host or parts.username is not None:
        return None
    if parts.password is not None:
        return None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    shown = f"[{host}]" if ":" in host else host
    if port is not None:
        shown += f":{port}"
    return Target(host, 80 if port is None else port, path.encode(), shown.encode())


TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_BAD_VALUE = re.compile(r"[\r\n\x00]")
_FRAMING = frozenset({"content-length", "transfer-encoding", "connection"})
_HEADS: dict[tuple[Target, tuple[tuple[str, str], ...]], bytes] = {}
_MAX_HEADS = 1024


def request_head(target: Target, headers: Mapping[str, str]) -> bytes:
    """The request line and headers of a POST to ``target``, up to the ``Content-Length``
    value (the caller appends it, then the body). A caller's ``Host`` replaces the URL's; a
    header name that is not a token, a value with CR, LF or NUL, or a framing header
    (``Content-Length``, ``Transfer-Encoding``, ``Connection``: this client frames the
    request itself) raises ``ValueError``."""
    key = (target, tuple(headers.items()))
    head = _HEADS.get(key)
    if head is None:
        head = _build_head(target, key[1])
        if len(_HEADS) < _MAX_HEADS:
            _HEADS[key] = head
    return head


def _build_head(target: Target, headers: tuple[tuple[str, str], ...]) -> bytes:
    host = target.host_header
    lines = []
    for name, value in headers:
        if not isinstance(name, str) or not TOKEN.match(name):
            raise ValueError(f"invalid header name {name!r}")
        if not isinstance(value, str) or _BAD_VALUE.search(value):
            raise ValueError(f"invalid value for header {name!r}: {value!r}")
        lowered = name.lower()
        if lowered in _FRAMING:
            raise ValueError(f"header {name!r} is set by the client, not the caller")
        encoded = value.encode("utf-8")
        if lowered == "host":
            host = encoded
            continue
        lines.append(name.encode("ascii") + b": " + encoded + b"\r\n")
    return (
        b"POST " + target.path + b" HTTP/1.1\r\nHost: " + host + b"\r\n"
        + b"".join(lines)
        + b"Content-Length: "
    )  # fmt: skip
