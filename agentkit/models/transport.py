"""HTTP to the model server: JSON posts and SSE streams, with retries that stay visible.

The hot path, a JSON POST to a plain ``http://`` URL on asyncio, goes through the transport's
own HTTP/1.1 client (:mod:`agentkit.models.http1`: one write per request, one protocol buffer
per reply, no redirects); ``Transport(own_client=False)`` sends it through aiohttp instead.
Streams and ``https`` go through aiohttp, which spends a fraction of httpx's client CPU per
request under high concurrency (measured in ``benchmarks/``). Under trio, where neither runs,
the same interface uses httpx.

Every attempt is validated before it counts: the caller's ``validate`` (a JSON reply) or
``consume`` (a stream) raises :class:`~agentkit.models.failures.ProtocolError` for a reply that
is not complete, and a stream that ends without ``[DONE]`` or carries an ``{"error": ...}`` event
fails here. Each failed attempt is recorded with its typed cause and retried per policy, a stream
cut in the middle too: the attempt is marked ``partial`` so the caller knows to discard what it
had received of that attempt. ``Retry-After`` (429/503) is honoured up to a cap. A reply body
longer than the transport's ``max_body_bytes``, as sent or once decoded, fails the call on every
path (the own client, aiohttp and httpx alike), and so does one stream event longer than it: a
:class:`~agentkit.models.failures.BodyTooLong`, recorded as one ``protocol`` attempt and not
retried (the server would send it again, and each try reads up to the bound).

Request bodies are encoded with orjson when it is installed (the ``fast`` extra), else with the
standard library; what orjson will not take (an integer beyond 64 bits, a lone surrogate, and
on purpose a datetime, a dataclass or a subclass of a JSON type, which it would otherwise turn
into JSON the standard library refuses) goes to the standard library, which decides. Two
differences remain: orjson writes a ``uuid.UUID`` as its string and a non-finite float as
``null`` (the standard library refuses the first and writes ``NaN``, not JSON, for the other);
settings are checked for both where they are built (``ModelSettings.extra`` must be plain JSON
with finite numbers). Replies are decoded to exactly the standard library's value, by orjson
when the text cannot hold what orjson reads otherwise (:mod:`agentkit.models.json_decode`).
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
import anyio
import sniffio
from aiohttp.client_proto import ResponseHandler

from agentkit.messages import assemble, shared_set
from agentkit.models import http1, json_decode
from agentkit.models.base import ModelError
from agentkit.models.failures import (
    RETRYABLE_STATUS,
    AttemptFailure,
    BodyTooLong,
    HTTPStatusError,
    ProtocolError,
    ServerErrorEvent,
    classify,
    retry_after_seconds,
)
from agentkit.trajectory.records import Attempt, AttemptCause

if TYPE_CHECKING:  # httpx is imported when a trio run first needs it (7 MiB not loaded else)
    import httpx

try:
    import orjson
except ImportError:  # pragma: no cover - the optional ``fast`` extra is not installed
    orjson = None  # type: ignore[assignment]

try:  # Unix only; elsewhere the pool bound is the fixed default
    import resource
except ImportError:  # pragma: no cover - Windows
    resource = None  # type: ignore[assignment]

__all__ = [
    "RETRYABLE_STATUS",
    "Body",
    "BodyTooLong",
    "HTTPStatusError",
    "ProtocolError",
    "RetryPolicy",
    "Transport",
    "default_max_connections",
]

T = TypeVar("T")
AttemptCallback = Callable[[Attempt], Awaitable[None]]
Events = AsyncIterator[dict[str, Any]]
# A request body: a JSON object, or one already encoded as JSON (sent as is).
Body = dict[str, Any] | bytes
StreamConsumer = Callable[[Events], Awaitable[T]]


class RetryPolicy:
    """Exponential backoff with jitter on retryable failures (connection errors, timeouts,
    protocol errors but a body over the bound, 408/429/5xx). ``timeout_s`` is the longest wait
    for the server's next bytes; ``max_retry_after_s`` caps how long a ``Retry-After`` may make
    the client wait (default: ``max_backoff_s``)."""

    def __init__(
        self,
        max_attempts: int = 4,
        initial_backoff_s: float = 0.25,
        max_backoff_s: float = 8.0,
        timeout_s: float = 600.0,
        max_retry_after_s: float | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if initial_backoff_s < 0 or max_backoff_s < 0:
            raise ValueError("backoffs must be >= 0")
        if timeout_s <= 0:
            raise ValueError("timeout_s must be > 0")
        if max_retry_after_s is not None and max_retry_after_s < 0:
            raise ValueError("max_retry_after_s must be >= 0")
        self.max_attempts = max_attempts
        self.initial_backoff_s = initial_backoff_s
        self.max_backoff_s = max_backoff_s
        self.timeout_s = timeout_s
        self.max_retry_after_s = max_backoff_s if max_retry_after_s is None else max_retry_after_s

    def backoff(self, attempt: int) -> float:
        base = min(self.max_backoff_s, self.initial_backoff_s * (2 ** (attempt - 1)))
        return float(base * (0.5 + random.random() / 2))

    def delay(self, attempt: int, retry_after_s: float | None) -> float:
        """The wait before attempt ``attempt + 1``: the backoff, or the server's capped
        ``Retry-After`` if that is longer."""
        wait = self.backoff(attempt)
        if retry_after_s is not None:
            wait = max(wait, min(retry_after_s, self.max_retry_after_s))
        return wait


def default_max_connections() -> int:
    """The pool bound when none is given: 512, or half the soft file-descriptor limit if that
    is lower (so a pool never takes every descriptor the process has)."""
    bound = 512
    if resource is not None:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft > 0:
            bound = min(bound, max(8, soft // 2))
    return bound


class _LazyReadTimeout(ResponseHandler):
    """aiohttp's response protocol with the same ``sock_read`` timeout (the longest wait for
    the server's next bytes), kept more cheaply: aiohttp cancels and schedules a timer for each
    piece of data received (three a reply); this moves a deadline, and the one timer, when it
    fires early, sleeps on to the deadline. It fires when aiohttp's would (within 1 ms)."""

    _read_deadline = 0.0

    def _reschedule_timeout(self) -> None:
        timeout = self._read_timeout
        if not timeout:
            self._drop_timeout()
            return
        self._read_deadline = self._loop.time() + timeout
        if self._read_timeout_handle is None:
            self._read_timeout_handle = self._loop.call_at(self._read_deadline, self._read_due)

    def _read_due(self) -> None:
        self._read_timeout_handle = None
        if self._read_deadline - self._loop.time() > 0.001:  # data came since: wait on
            self._read_timeout_handle = self._loop.call_at(self._read_deadline, self._read_due)
            return
        self._on_read_timeout()


# The protocol methods the lazy timeout replaces or calls (aiohttp 3.8 and later have them);
# without them the session keeps aiohttp's own protocol.
_LAZY_READ_TIMEOUT = all(
    callable(getattr(ResponseHandler, name, None))
    for name in ("_reschedule_timeout", "_drop_timeout", "_on_read_timeout")
)


class _Tracker:
    """What one attempt had delivered when it failed."""

    __slots__ = ("partial",)

    def __init__(self) -> None:
        self.partial = False


class Transport:
    """Connection pools bounded by ``max_connections`` each (default
    :func:`default_max_connections`): the own client's for JSON posts to ``http://`` URLs
    (``own_client=False`` leaves them to aiohttp), aiohttp's for streams and ``https``, httpx's
    under trio. ``aclose`` releases them.

    ``max_body_bytes`` (a positive int, default :data:`~agentkit.models.http1.MAX_BODY`, 256 MiB)
    bounds what one reply may make the client hold, on every path: a reply body read whole (a
    JSON reply, an error reply, through any of the three clients) fails the call once it is
    longer, as its ``Content-Length`` declares, as received, or once decoded (a decompression
    bomb stops at the bound); so does one event of a stream. That failure, a
    :class:`~agentkit.models.failures.BodyTooLong`, is not retried. A stream's events together
    are not bounded: each is handed on as it ends."""

    def __init__(
        self,
        retry: RetryPolicy | None = None,
        max_connections: int | None = None,
        *,
        own_client: bool = True,
        max_body_bytes: int = http1.MAX_BODY,
    ) -> None:
        if max_connections is not None and max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        if type(max_body_bytes) is not int or max_body_bytes < 1:  # a bool is not a size
            raise ValueError(f"max_body_bytes must be a positive int, got {max_body_bytes!r}")
        self.retry = retry or RetryPolicy()
        self.max_connections = max_connections or default_max_connections()
        self.own_client = own_client
        self.max_body_bytes = max_body_bytes
        self._aiohttp: aiohttp.ClientSession | None = None
        self._httpx: httpx.AsyncClient | None = None
        self._http1: http1.Pool | None = None
        self._http1_loop: object = None

    async def aclose(self) -> None:
        if self._http1 is not None:
            pool, self._http1 = self._http1, None
            await pool.close()
        if self._aiohttp is not None:
            await self._aiohttp.close()
            self._aiohttp = None
        if self._httpx is not None:
            await self._httpx.aclose()
            self._httpx = None

    def _use_aiohttp(self) -> bool:
        return sniffio.current_async_library() == "asyncio"

    def _session(self) -> aiohttp.ClientSession:
        if self._aiohttp is None or self._aiohttp.closed:
            connector = aiohttp.TCPConnector(
                limit=self.max_connections, ttl_dns_cache=300, enable_cleanup_closed=True
            )
            if _LAZY_READ_TIMEOUT and hasattr(connector, "_factory"):
                # the connector's protocol factory (aiohttp's own, of its ResponseHandler)
                lazy = functools.partial(_LazyReadTimeout, loop=connector._loop)
                connector._factory = lazy  # type: ignore[assignment]
            # No total: waiting for a pooled connection is not the server's fault.
            timeout = aiohttp.ClientTimeout(
                total=None,
                sock_connect=min(self.retry.timeout_s, 30.0),
                sock_read=self.retry.timeout_s,
            )
            self._aiohttp = aiohttp.ClientSession(connector=connector, timeout=timeout)
        return self._aiohttp

    def _target(self, url: str) -> http1.Target | None:
        """Where the own client sends a JSON post to ``url``, or ``None`` if it does not."""
        return http1.target_of(url) if self.own_client else None

    def _pool(self) -> http1.Pool:
        """The own client's pool for the running event loop (connections belong to one)."""
        loop = asyncio.get_running_loop()
        pool = self._http1
        if pool is None or self._http1_loop is not loop:
            pool = self._http1 = http1.Pool(
                self.max_connections,
                connect_timeout_s=min(self.retry.timeout_s, 30.0),
                read_timeout_s=self.retry.timeout_s,
                max_body_bytes=self.max_body_bytes,
            )
            self._http1_loop = loop
        return pool

    async def _own_post(
        self, target: http1.Target, body: bytes, headers: Mapping[str, str] | None
    ) -> bytes:
        """The body of a 2xx reply to one post through the own client; any other status
        raises :class:`HTTPStatusError` (redirects are not followed)."""
        head = http1.request_head(target, _with_json(headers))
        reply = await self._pool().post(target, head, body)
        if reply.status >= 300:
            raise _status_error(reply.status, reply.body, reply.retry_after)
        return reply.body

    def _client(self) -> httpx.AsyncClient:
        if self._httpx is None:
            import httpx

            limits = httpx.Limits(max_connections=self.max_connections)
            timeout = httpx.Timeout(
                self.retry.timeout_s, connect=min(self.retry.timeout_s, 30.0), pool=None
            )
            self._httpx = httpx.AsyncClient(timeout=timeout, limits=limits)
        return self._httpx

    # --- public --------------------------------------------------------------------------------

    async def post_json(
        self,
        url: str,
        body: Body,
        *,
        attempts: list[Attempt],
        on_attempt: AttemptCallback | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """POST ``body`` and return the JSON object; retries per policy."""
        return await self.request_json(
            url, body, _as_is, attempts=attempts, on_attempt=on_attempt, headers=headers
        )

    async def request_json(
        self,
        url: str,
        body: Body,
        validate: Callable[[dict[str, Any]], T],
        *,
        attempts: list[Attempt],
        on_attempt: AttemptCallback | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> T:
        """POST ``body`` (a JSON object, or JSON already encoded as ``bytes``, sent as is);
        ``validate`` turns the JSON object into the result or raises
        :class:`ProtocolError`. Every attempt is appended to ``attempts``. ``headers`` are sent
        with the request (e.g. the router's routing key)."""

        if not self._use_aiohttp() or type(self)._post_once is not Transport._post_once:
            # trio, or a transport that answers in its own way (verl's server manager)
            return await self._with_retries(
                url, _json_once(self, url, body, validate, headers), attempts, on_attempt
            )
        # The first attempt in this one coroutine (what _with_retries and _post_once do, without
        # their layers on every resume); the retry machinery only once it has failed.
        started = time.time()
        t0 = time.perf_counter()
        try:
            body = _encoded(body)  # the bytes only, while the reply is awaited (and retried)
            target = self._target(url)
            if target is not None:
                raw = await self._own_post(target, body, headers)
            else:
                raw = await self._aiohttp_post(url, body, headers)
            result = validate(_loads(raw))
        except Exception as exc:  # cancellation is a BaseException and passes through
            delay = await self._failed_attempt(
                1, url, exc, started, t0, False, attempts, on_attempt
            )
        else:
            attempts.append(_succeeded(1, _server_of(url), started, t0))
            return result
        await anyio.sleep(delay)
        once = _json_once(self, url, body, validate, headers)
        return await self._with_retries(url, once, attempts, on_attempt, first=2)

    async def post(
        self,
        url: str,
        body: Body,
        *,
        validate: Callable[[dict[str, Any]], T],
        consume: StreamConsumer[T] | None,
        attempts: list[Attempt],
        on_attempt: AttemptCallback | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> T:
        """One call of a backend: streamed through ``consume`` when there is one (the caller
        asked for deltas), else one JSON reply through ``validate``."""
        if consume is not None:
            return await self.stream_sse(
                url, body, consume, attempts=attempts, on_attempt=on_attempt, headers=headers
            )
        return await self.request_json(
            url, body, validate, attempts=attempts, on_attempt=on_attempt, headers=headers
        )

    async def stream_sse(
        self,
        url: str,
        body: Body,
        consume: StreamConsumer[T],
        *,
        attempts: list[Attempt],
        on_attempt: AttemptCallback | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> T:
        """POST ``body`` and hand the SSE ``data:`` objects of each attempt to ``consume``.

        The events end at ``[DONE]``; a stream that ends without it, a frame that is not JSON
        and an ``{"error": ...}`` event fail the attempt. A failed attempt that had delivered
        events is recorded ``partial``: ``on_attempt`` sees it before the retry, so the caller can
        discard what ``consume`` forwarded.
        """

        async def once(tracker: _Tracker) -> T:
            events = self._events(url, body, tracker, headers)
            try:
                return await consume(events)
            finally:
                await events.aclose()

        return await self._with_retries(url, once, attempts, on_attempt)

    # --- one attempt ---------------------------------------------------------------------------

    async def _post_once(
        self, url: str, body: Body, headers: Mapping[str, str] | None
    ) -> dict[str, Any]:
        if self._use_aiohttp():
            target = self._target(url)
            if target is not None:
                return _loads(await self._own_post(target, _encoded(body), headers))
            return _loads(await self._aiohttp_post(url, _encoded(body), headers))
        async with self._client().stream(
            "POST", url, content=_encoded(body), headers=_with_json(headers)
        ) as response:
            raw = await _httpx_body(response, self.max_body_bytes)
        if response.status_code >= 400:
            raise _status_error(response.status_code, raw, response.headers.get("Retry-After"))
        return _loads(raw)

    async def _aiohttp_post(
        self, url: str, body: bytes, headers: Mapping[str, str] | None
    ) -> bytes:
        async with self._session().post(url, data=body, headers=_with_json(headers)) as resp:
            replied = resp.headers
            length = replied.get("Content-Length")
            if (
                length is not None
                and len(length) <= 18
                and length.isdigit()
                and int(length) <= self.max_body_bytes
                and replied.get("Content-Encoding", "identity") == "identity"
            ):  # framed by a length within the bound and not decoded: read as aiohttp reads it
                raw = await resp.read()
            else:
                raw = await _aiohttp_body(resp, self.max_body_bytes)
            if resp.status >= 400:
                raise _status_error(resp.status, raw, resp.headers.get("Retry-After"))
            return raw

    async def _events(
        self,
        url: str,
        body: Body,
        tracker: _Tracker,
        headers: Mapping[str, str] | None,
    ) -> AsyncGenerator[dict[str, Any], None]:
        frames = self._frames(url, body, headers)
        try:
            async for frame in frames:
                event = _sse_data(frame)
                if event is _DONE:
                    return
                if event is None:
                    continue
                if "error" in event and not event.get("choices"):
                    raise ServerErrorEvent(event["error"])
                tracker.partial = True
                yield event
        finally:
            await frames.aclose()
        raise ProtocolError("the stream ended without [DONE]", cause=AttemptCause.INCOMPLETE_STREAM)

    async def _frames(
        self, url: str, body: Body, headers: Mapping[str, str] | None
    ) -> AsyncGenerator[bytes, None]:
        """The raw SSE frames of one streamed reply (the last one even without its blank line);
        a frame longer than ``max_body_bytes`` fails it."""
        limit = self.max_body_bytes
        if self._use_aiohttp():
            data, sent = _encoded(body), _with_json(headers)
            async with self._session().post(url, data=data, headers=sent) as resp:
                if resp.status >= 400:
                    raw = await _aiohttp_body(resp, limit)
                    raise _status_error(resp.status, raw, resp.headers.get("Retry-After"))
                buffer = b""
                async for chunk in resp.content.iter_any():
                    buffer += chunk
                    while b"\n\n" in buffer:
                        frame, buffer = buffer.split(b"\n\n", 1)
                        yield frame
                    _check_frame(buffer, limit)
                if buffer.strip():
                    yield buffer
            return
        async with self._client().stream(
            "POST", url, content=_encoded(body), headers=_with_json(headers)
        ) as r:
            if r.status_code >= 400:
                raw = await _httpx_body(r, limit)
                raise _status_error(r.status_code, raw, r.headers.get("Retry-After"))
            buffer = b""
            async for piece in r.aiter_bytes():
                buffer += piece
                while b"\n\n" in buffer:
                    frame, buffer = buffer.split(b"\n\n", 1)
                    yield frame
                _check_frame(buffer, limit)
            if buffer.strip():
                yield buffer

    # --- retries -------------------------------------------------------------------------------

    async def _with_retries(
        self,
        url: str,
        once: Callable[[_Tracker], Awaitable[T]],
        attempts: list[Attempt],
        on_attempt: AttemptCallback | None,
        *,
        first: int = 1,
    ) -> T:
        server = _server_of(url)
        for number in range(first, self.retry.max_attempts + 1):
            started = time.time()
            t0 = time.perf_counter()
            tracker = _Tracker()
            try:
                result = await once(tracker)
            except Exception as exc:  # cancellation is a BaseException and passes through
                delay = await self._failed_attempt(
                    number, url, exc, started, t0, tracker.partial, attempts, on_attempt
                )
                await anyio.sleep(delay)
                continue
            attempts.append(_succeeded(number, server, started, t0))
            return result
        raise AssertionError("unreachable")

    async def _failed_attempt(
        self,
        number: int,
        url: str,
        exc: Exception,
        started: float,
        t0: float,
        partial: bool,
        attempts: list[Attempt],
        on_attempt: AttemptCallback | None,
    ) -> float:
        """Record attempt ``number``, failed with ``exc``, and return the wait before the next
        one; raise :class:`ModelError` (from ``exc``) when it was the last. Called in the
        ``except`` clause that caught ``exc``."""
        failure = classify(exc)
        last = number == self.retry.max_attempts or not failure.retryable
        delay = None if last else self.retry.delay(number, failure.retry_after_s)
        attempt = _failed(number, _server_of(url), started, t0, failure, partial, delay)
        attempts.append(attempt)
        if on_attempt is not None:
            await on_attempt(attempt)
        if last:
            raise ModelError(
                f"model request to {url} failed after {number} attempt(s): {attempt.error}",
                attempts,
                can_fail_over=_other_server_may_help(failure),
                cause=failure.cause,
            ) from exc
        return delay or 0.0


def _json_once(
    transport: Transport,
    url: str,
    body: Body,
    validate: Callable[[dict[str, Any]], T],
    headers: Mapping[str, str] | None,
) -> Callable[[_Tracker], Awaitable[T]]:
    """One attempt of a JSON request, for :meth:`Transport._with_retries`."""

    async def once(_: _Tracker) -> T:
        return validate(await transport._post_once(url, body, headers))

    return once


JSON_CONTENT_TYPE = "application/json"
_JSON = {"content-type": JSON_CONTENT_TYPE}


def _with_json(headers: Mapping[str, str] | None) -> Mapping[str, str]:
    """The headers sent: ``headers`` with the JSON content type (as they are when they have
    it already, e.g. a session's headers built once)."""
    if not headers:
        return _JSON
    if headers.get("content-type") == JSON_CONTENT_TYPE:
        return headers
    return {**_JSON, **headers}


_DONE: dict[str, Any] = {}


def _as_is(value: dict[str, Any]) -> dict[str, Any]:
    return value


_ORJSON_OPTIONS = (
    0
    if orjson is None
    else orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def _encoded(body: Body) -> bytes:
    """The bytes of a request body: already-encoded JSON as is, else the object encoded."""
    return body if isinstance(body, bytes) else _dumps(body)


def _dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON (orjson when installed, else the standard library)."""
    if orjson is not None:
        try:
            return orjson.dumps(value, option=_ORJSON_OPTIONS)
        except TypeError:  # orjson.JSONEncodeError: let the standard library decide
            pass
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _loads(raw: bytes | str) -> dict[str, Any]:
    try:
        value = json_decode.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"the server sent invalid JSON: {raw[:200]!r}") from exc
    if not isinstance(value, dict):
        raise ProtocolError(f"the server sent JSON that is not an object: {raw[:200]!r}")
    return value


async def _aiohttp_body(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body of ``resp``, decoded as aiohttp decodes it (in pieces, so a decompression
    bomb is not inflated whole); refused, and the connection closed, once it is longer than
    ``limit`` bytes, as declared or as read."""
    length = resp.headers.get("Content-Length")
    if _declared_over(length, limit):
        resp.close()
        raise _too_long(limit)
    if length is not None and resp.headers.get("Content-Encoding", "identity") == "identity":
        # framed by a length within the bound and not decoded: aiohttp reads no more than it
        # (a JSON reply's usual case: _aiohttp_post tests it before calling this)
        return await resp.read()
    pieces: list[bytes] = []
    size = 0
    content = resp.content
    while piece := await content.readany():
        size += len(piece)
        if size > limit:
            resp.close()
            raise _too_long(limit)
        pieces.append(piece)
    return b"".join(pieces)


async def _httpx_body(response: httpx.Response, limit: int) -> bytes:
    """The whole body of a streamed httpx ``response``, decoded; refused once it is longer than
    ``limit`` bytes, as declared or as read (leaving the stream then closes the connection)."""
    if _declared_over(response.headers.get("Content-Length"), limit):
        raise _too_long(limit)
    pieces: list[bytes] = []
    size = 0
    async for piece in response.aiter_bytes():
        size += len(piece)
        if size > limit:
            raise _too_long(limit)
        pieces.append(piece)
    return b"".join(pieces)


def _declared_over(length: str | None, limit: int) -> bool:
    """Whether a ``Content-Length`` value declares more than ``limit`` bytes (a value that is
    not a number is the client's parser's to refuse; one of over 18 digits is over any bound)."""
    if length is None or not (length.isascii() and length.isdigit()):
        return False
    return len(length) > 18 or int(length) > limit


def _too_long(limit: int) -> BodyTooLong:
    return BodyTooLong("the reply's body is longer than", limit)


def _check_frame(pending: bytes, limit: int) -> None:
    """Refuse a stream whose frame still pending (no blank line yet) is longer than ``limit``."""
    if len(pending) > limit:
        raise BodyTooLong("an event of the stream is longer than", limit)


def _status_error(status: int, raw: bytes, retry_after: str | None) -> HTTPStatusError:
    return HTTPStatusError(
        status, raw.decode("utf-8", errors="replace"), retry_after_seconds(retry_after)
    )


def _server_of(url: str) -> str:
    """The base URL of a server endpoint URL (what attempts are recorded against), worked
    out once per URL (a backend posts to a few)."""
    server = _SERVERS.get(url)
    if server is None:
        server = url.split("/v1/")[0].removesuffix("/generate")
        if len(_SERVERS) < _MAX_SERVERS:
            _SERVERS[url] = server
    return server


_SERVERS: dict[str, str] = {}
_MAX_SERVERS = 1024  # URLs kept; beyond, each is worked out again (the same result)


def _succeeded(number: int, server: str, started: float, t0: float) -> Attempt:
    # assembled: the values are built here with their field types, every field in field
    # order, the first six given (one shared fields set); see the tests
    data = {
        "number": number,
        "server": server,
        "started_at": started,
        "elapsed_s": time.perf_counter() - t0,
        "ok": True,
        "status_code": 200,
        "error": None,
        "cause": None,
        "retryable": None,
        "partial": False,
        "retry_after_s": None,
        "backoff_s": None,
    }
    # a set of its own once no more shared sets are kept
    return assemble(Attempt, data, _SUCCEEDED_SET or set(_SUCCEEDED_GIVEN))


_SUCCEEDED_GIVEN = ("number", "server", "started_at", "elapsed_s", "ok", "status_code")
_SUCCEEDED_SET = shared_set(_SUCCEEDED_GIVEN)


def _failed(
    number: int,
    server: str,
    started: float,
    t0: float,
    failure: AttemptFailure,
    partial: bool,
    delay: float | None,
) -> Attempt:
    return Attempt(
        number=number,
        server=server,
        started_at=started,
        elapsed_s=time.perf_counter() - t0,
        ok=False,
        status_code=failure.status,
        error=f"{failure.cause.value}: {failure}",
        cause=failure.cause,
        retryable=failure.retryable,
        partial=partial,
        retry_after_s=failure.retry_after_s,
        backoff_s=delay,
    )


def _other_server_may_help(failure: AttemptFailure) -> bool:
    """A dead, overloaded or misbehaving server, as opposed to a request it rejected or a
    problem of this process (out of descriptors: another server would not help)."""
    if failure.cause in (
        AttemptCause.CLIENT_ERROR,
        AttemptCause.ABORTED,
        AttemptCause.RESOURCE_EXHAUSTED,
    ):
        return False
    if failure.cause in (AttemptCause.HTTP_STATUS, AttemptCause.SERVER_ERROR_EVENT):
        return failure.retryable
    return True


def _sse_data(frame: bytes) -> dict[str, Any] | None:
    try:
        text = frame.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"an SSE frame is not UTF-8: {frame[:200]!r}") from exc
    data_lines = [line[5:].lstrip() for line in text.splitlines() if line.startswith("data:")]
    if not data_lines:
        return None
    data = "\n".join(data_lines)
    if data.strip() == "[DONE]":
        return _DONE
    return _loads(data)
