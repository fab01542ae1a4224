"""Typed failures of one model-call attempt, and how each is classified.

Every way an attempt can go wrong ends as an :class:`AttemptFailure` with a typed
:class:`~agentkit.trajectory.records.AttemptCause`, whether it is worth retrying, and the
server's ``Retry-After`` if it sent one. Nothing here imports: classification runs inside
``except`` clauses, where an import can itself fail (e.g. out of file descriptors). httpx (the
trio transport) is not imported for it either: an httpx exception can only exist once httpx
has been imported, so its classes are looked up in ``sys.modules``.
"""

from __future__ import annotations

import errno
import sys
import time
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from agentkit.trajectory.records import AttemptCause

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_NO_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE})


class AttemptFailure(Exception):
    """One attempt failed for ``cause``; ``retryable`` says whether another try may help."""

    def __init__(
        self,
        cause: AttemptCause,
        message: str,
        *,
        retryable: bool = True,
        status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.cause = cause
        self.retryable = retryable
        self.status = status
        self.retry_after_s = retry_after_s


class HTTPStatusError(AttemptFailure):
    """The server answered with an error status (retryable for 408, 429 and 5xx)."""

    def __init__(self, status: int, body: str, retry_after_s: float | None = None) -> None:
        super().__init__(
            AttemptCause.HTTP_STATUS,
            f"HTTP {status}: {body[:500]}",
            retryable=status in RETRYABLE_STATUS,
            status=status,
            retry_after_s=retry_after_s,
        )
        self.body = body


class ProtocolError(AttemptFailure):
    """The reply does not have what the protocol requires (retryable: a server may recover)."""

    def __init__(self, message: str, cause: AttemptCause = AttemptCause.PROTOCOL) -> None:
        super().__init__(cause, message, retryable=True)


class BodyTooLong(ProtocolError):
    """A reply body (or one stream event) longer than the client's bound (``max_body_bytes``),
    as sent or once decoded (a decompression bomb): not retried, since the server would most
    likely send it again and each try would read, and inflate, up to the bound. ``what`` says
    what was over ``limit``, e.g. ``"the reply's body is longer than"``."""

    def __init__(self, what: str, limit: int) -> None:
        super().__init__(f"{what} {limit} bytes, the client's bound (max_body_bytes)")
        self.retryable = False
        self.limit = limit


class ServerErrorEvent(AttemptFailure):
    """The server sent ``{"error": ...}`` in a stream; a 4xx code in it is not retried."""

    def __init__(self, error: Any) -> None:
        code = _error_code(error)
        retryable = code is None or code >= 500 or code in RETRYABLE_STATUS
        super().__init__(
            AttemptCause.SERVER_ERROR_EVENT,
            f"server error event in stream: {str(error)[:500]}",
            retryable=retryable,
            status=code,
        )


class AbortedByServer(AttemptFailure):
    """SGLang aborted the request (``finish_reason.type == "abort"``): not retried."""

    def __init__(self, detail: Any) -> None:
        super().__init__(
            AttemptCause.ABORTED, f"the server aborted the request: {detail}", retryable=False
        )


class ReplyCutOff(ConnectionError):
    """The connection ended before the whole reply (the transport's own HTTP client)."""


class ReadTimeout(TimeoutError):
    """The server sent nothing for longer than the read timeout."""


def classify(exc: BaseException) -> AttemptFailure:
    """The typed failure for any exception raised while making one attempt."""
    if isinstance(exc, AttemptFailure):
        return exc
    text = f"{type(exc).__name__}: {exc}"
    if _out_of_descriptors(exc):
        return AttemptFailure(AttemptCause.RESOURCE_EXHAUSTED, text)
    timeout, cut_off, transport = _httpx_errors()
    if isinstance(exc, (TimeoutError, aiohttp.ServerTimeoutError, *timeout)):
        return AttemptFailure(AttemptCause.TIMEOUT, text)
    if isinstance(exc, (ReplyCutOff, aiohttp.ClientPayloadError, *cut_off)):
        return AttemptFailure(AttemptCause.CONNECTION, f"reply cut off: {text}")
    if isinstance(exc, (aiohttp.ClientConnectionError, ConnectionError, OSError, *transport)):
        return AttemptFailure(AttemptCause.CONNECTION, text)
    if isinstance(exc, aiohttp.ClientResponseError):
        # aiohttp's parser refused the reply's bytes (not HTTP, a bad length or chunk size):
        # the server's fault, as a reply that is not JSON is
        return ProtocolError(f"the reply is not valid HTTP: {text}")
    if isinstance(exc, UnicodeDecodeError):
        return ProtocolError(f"the reply is not UTF-8: {text}")
    return AttemptFailure(AttemptCause.CLIENT_ERROR, text, retryable=False)


_Classes = tuple[type[BaseException], ...]


def _httpx_errors() -> tuple[_Classes, _Classes, _Classes]:
    """httpx's timeout, cut-off and transport exception classes, or none while httpx has not
    been imported (then no exception can be one of them)."""
    httpx = sys.modules.get("httpx")
    if httpx is None:
        return (), (), ()
    return (
        _classes(httpx, "TimeoutException"),
        _classes(httpx, "RemoteProtocolError"),
        _classes(httpx, "TransportError"),
    )


def _classes(module: Any, name: str) -> _Classes:
    found = getattr(module, name, None)  # a module half imported may not have it yet
    return (found,) if isinstance(found, type) and issubclass(found, BaseException) else ()


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: a number of seconds or an HTTP date; ``None`` if unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def _out_of_descriptors(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _NO_DESCRIPTORS:
            return True
        os_error = getattr(current, "os_error", None)
        if isinstance(os_error, OSError) and os_error.errno in _NO_DESCRIPTORS:
            return True
        current = current.__cause__ or current.__context__
    return False


def _error_code(error: Any) -> int | None:
    if isinstance(error, dict):
        for key in ("code", "status_code", "status"):
            value = error.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
    return None
