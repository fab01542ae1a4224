"""HTTP to the model server: JSON posts and SSE streams, with retries that stay visible.

The hot path is aiohttp on asyncio: measured in ``benchmarks/`` it spends a fraction of httpx's
client CPU per request under high concurrency (httpcore's pool bookkeeping rescans every
connection per request). Under trio, where aiohttp cannot run, the same interface uses httpx.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import anyio
import httpx
import sniffio

from agentkit.models.base import ModelError
from agentkit.trajectory.records import Attempt


class RetryPolicy:
    """Exponential backoff with jitter on connection errors, timeouts, 429 and 5xx."""

    def __init__(
        self,
        max_attempts: int = 4,
        initial_backoff_s: float = 0.25,
        max_backoff_s: float = 8.0,
        timeout_s: float = 600.0,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.max_attempts = max_attempts
        self.initial_backoff_s = initial_backoff_s
        self.max_backoff_s = max_backoff_s
        self.timeout_s = timeout_s

    def backoff(self, attempt: int) -> float:
        base = min(self.max_backoff_s, self.initial_backoff_s * (2 ** (attempt - 1)))
        return float(base * (0.5 + random.random() / 2))


class HTTPStatusError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
AttemptCallback = Callable[[Attempt], Awaitable[None]]


class Transport:
    """One connection pool per event loop; ``aclose`` releases it."""

    def __init__(self, retry: RetryPolicy | None = None, max_connections: int = 0) -> None:
        self.retry = retry or RetryPolicy()
        self._max_connections = max_connections
        self._aiohttp: aiohttp.ClientSession | None = None
        self._httpx: httpx.AsyncClient | None = None

    async def aclose(self) -> None:
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
                limit=self._max_connections, ttl_dns_cache=300, enable_cleanup_closed=True
            )
            timeout = aiohttp.ClientTimeout(total=self.retry.timeout_s)
            self._aiohttp = aiohttp.ClientSession(
                connector=connector, timeout=timeout, json_serialize=_dumps
            )
        return self._aiohttp

    def _client(self) -> httpx.AsyncClient:
        if self._httpx is None:
            limits = httpx.Limits(max_connections=self._max_connections or None)
            self._httpx = httpx.AsyncClient(timeout=self.retry.timeout_s, limits=limits)
        return self._httpx

    async def post_json(
        self,
        url: str,
        body: dict[str, Any],
        *,
        attempts: list[Attempt],
        on_attempt: AttemptCallback | None = None,
    ) -> dict[str, Any]:
        """POST ``body``; retries per policy; every attempt is appended to ``attempts``."""

        async def once() -> dict[str, Any]:
            if self._use_aiohttp():
                async with self._session().post(url, json=body) as resp:
                    text = await resp.text()
                    if resp.status >= 400:
                        raise HTTPStatusError(resp.status, text)
                    return _loads(text)
            response = await self._client().post(url, content=_dumps(body), headers=_JSON)
            if response.status_code >= 400:
                raise HTTPStatusError(response.status_code, response.text)
            return _loads(response.text)

        return await self._with_retries(url, once, attempts, on_attempt)

    async def stream_sse(
        self,
        url: str,
        body: dict[str, Any],
        *,
        attempts: list[Attempt],
        on_attempt: AttemptCallback | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """POST ``body`` and yield each SSE ``data:`` JSON object until ``[DONE]``.

        Retries apply only until the first event arrives: a stream cut in the middle raises,
        because replaying it would duplicate what the caller already received.
        """
        server = _server_of(url)
        for number in range(1, self.retry.max_attempts + 1):
            started = time.time()
            t0 = time.perf_counter()
            got_any = False
            try:
                async for event in self._stream_once(url, body):
                    if not got_any:
                        got_any = True
                        attempts.append(_attempt(number, server, started, t0))
                    yield event
                return
            except anyio.get_cancelled_exc_class():
                raise
            except Exception as exc:
                attempt = _attempt(number, server, started, t0, exc)
                attempts.append(attempt)
                if on_attempt is not None:
                    await on_attempt(attempt)
                if got_any or not _retryable(exc) or number == self.retry.max_attempts:
                    raise ModelError(
                        f"model stream to {url} failed after {number} attempt(s): {attempt.error}",
                        attempts,
                        can_fail_over=not got_any,
                    ) from exc
                await anyio.sleep(self.retry.backoff(number))

    async def _stream_once(self, url: str, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        if self._use_aiohttp():
            async with self._session().post(url, json=body) as resp:
                if resp.status >= 400:
                    raise HTTPStatusError(resp.status, await resp.text())
                buffer = b""
                async for chunk in resp.content.iter_any():
                    buffer += chunk
                    while b"\n\n" in buffer:
                        frame, buffer = buffer.split(b"\n\n", 1)
                        event = _sse_data(frame.decode("utf-8"))
                        if event is _DONE:
                            return
                        if event is not None:
                            yield event
            return
        async with self._client().stream("POST", url, content=_dumps(body), headers=_JSON) as r:
            if r.status_code >= 400:
                raise HTTPStatusError(r.status_code, (await r.aread()).decode())
            text_buffer = ""
            async for piece in r.aiter_text():
                text_buffer += piece
                while "\n\n" in text_buffer:
                    frame_text, text_buffer = text_buffer.split("\n\n", 1)
                    event = _sse_data(frame_text)
                    if event is _DONE:
                        return
                    if event is not None:
                        yield event

    async def _with_retries(
        self,
        url: str,
        once: Callable[[], Awaitable[dict[str, Any]]],
        attempts: list[Attempt],
        on_attempt: AttemptCallback | None,
    ) -> dict[str, Any]:
        server = _server_of(url)
        for number in range(1, self.retry.max_attempts + 1):
            started = time.time()
            t0 = time.perf_counter()
            try:
                result = await once()
            except anyio.get_cancelled_exc_class():
                raise
            except Exception as exc:
                attempt = _attempt(number, server, started, t0, exc)
                attempts.append(attempt)
                if on_attempt is not None:
                    await on_attempt(attempt)
                if not _retryable(exc) or number == self.retry.max_attempts:
                    raise ModelError(
                        f"model request to {url} failed after {number} attempt(s): {attempt.error}",
                        attempts,
                    ) from exc
                await anyio.sleep(self.retry.backoff(number))
                continue
            attempts.append(_attempt(number, server, started, t0))
            return result
        raise AssertionError("unreachable")


_JSON = {"content-type": "application/json"}
_DONE: dict[str, Any] = {}


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _loads(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HTTPStatusError(502, f"server sent invalid JSON: {text[:200]!r}") from exc
    if not isinstance(value, dict):
        raise HTTPStatusError(502, f"server sent JSON that is not an object: {text[:200]!r}")
    return value


def _server_of(url: str) -> str:
    """The base URL of a server endpoint URL (what attempts are recorded against)."""
    return url.split("/v1/")[0].removesuffix("/generate")


def _attempt(
    number: int, server: str, started: float, t0: float, exc: Exception | None = None
) -> Attempt:
    return Attempt(
        number=number,
        server=server,
        started_at=started,
        elapsed_s=time.perf_counter() - t0,
        ok=exc is None,
        status_code=(exc.status if isinstance(exc, HTTPStatusError) else None)
        if exc is not None
        else 200,
        error=f"{type(exc).__name__}: {exc}" if exc is not None else None,
    )


def _sse_data(frame: str) -> dict[str, Any] | None:
    data_lines = [line[5:].lstrip() for line in frame.splitlines() if line.startswith("data:")]
    if not data_lines:
        return None
    data = "\n".join(data_lines)
    if data.strip() == "[DONE]":
        return _DONE
    return _loads(data)


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, HTTPStatusError):
        return exc.status in RETRYABLE_STATUS
    return isinstance(
        exc,
        aiohttp.ClientConnectionError
        | aiohttp.ClientPayloadError
        | httpx.TransportError
        | TimeoutError
        | ConnectionError,
    )
