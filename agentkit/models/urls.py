"""Which server a conversation talks to.

Several SGLang servers behind one client: each conversation is pinned to one server by its routing
key (the episode id), so that server's radix cache keeps hitting. When the server fails (connection
refused, timeouts, 5xx after the transport's retries), the conversation's current call moves to
another live server and stays there; the failed server is probed again after a cool-down.
Each server can have a concurrency limit.

A base URL may also be SGLang's router (``sglang-router``) in front of many servers: every
request of a conversation carries its routing key in :data:`ROUTING_KEY_HEADER`, which the
router's ``manual`` policy uses to keep the conversation on one server behind it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit

import anyio

from agentkit.models.base import ModelError

T = TypeVar("T")

#: The header SGLang's router reads a request's routing key from.
ROUTING_KEY_HEADER = "X-SMG-Routing-Key"


class ServerPool:
    """Base URLs with sticky hash-based assignment, failover and per-server limits."""

    def __init__(
        self,
        base_urls: str | list[str],
        *,
        max_concurrency_per_server: int | None = None,
        cooldown_s: float = 10.0,
    ) -> None:
        urls = [base_urls] if isinstance(base_urls, str) else list(base_urls)
        if not urls:
            raise ValueError("at least one server base URL is needed")
        self.urls = [normalize_base_url(u) for u in urls]
        if len(set(self.urls)) != len(self.urls):
            raise ValueError(f"the same server is listed twice: {self.urls}")
        if max_concurrency_per_server is not None and max_concurrency_per_server < 1:
            raise ValueError("max_concurrency_per_server must be at least 1")
        if cooldown_s < 0:
            raise ValueError("cooldown_s must be >= 0")
        self.cooldown_s = cooldown_s
        self.max_concurrency_per_server = max_concurrency_per_server
        self._down_until: dict[str, float] = {}
        self._pinned: dict[str, str] = {}
        self._limiters: dict[str, anyio.CapacityLimiter] = {}
        self.failovers = 0

    @property
    def sole(self) -> str | None:
        """The server when there is only one and no per-server limit, else ``None``: a call
        can then go straight to it (:meth:`call` would pick it, with no failover to try)."""
        if len(self.urls) == 1 and self.max_concurrency_per_server is None:
            return self.urls[0]
        return None

    @property
    def down(self) -> set[str]:
        now = time.monotonic()
        return {u for u, until in self._down_until.items() if until > now}

    def pick(self, routing_key: str, *, avoid: set[str] | None = None) -> str:
        down = self.down | (avoid or set())
        current = self._pinned.get(routing_key)
        if current is not None and current not in down:
            return current
        alive = [u for u in self.urls if u not in down] or self.urls
        digest = int(hashlib.blake2b(routing_key.encode(), digest_size=8).hexdigest(), 16)
        chosen = alive[digest % len(alive)]
        self._pinned[routing_key] = chosen
        return chosen

    def mark_down(self, url: str) -> None:
        self._down_until[url] = time.monotonic() + self.cooldown_s

    def mark_up(self, url: str) -> None:
        self._down_until.pop(url, None)

    def _limiter(self, url: str) -> anyio.CapacityLimiter | None:
        if self.max_concurrency_per_server is None:
            return None
        limiter = self._limiters.get(url)
        if limiter is None:
            limiter = anyio.CapacityLimiter(self.max_concurrency_per_server)
            self._limiters[url] = limiter
        return limiter

    async def call(self, routing_key: str, do: Callable[[str], Awaitable[T]]) -> tuple[T, str]:
        """Run ``do(server)`` on the conversation's server, failing over to the others when it
        fails for infrastructure reasons. Returns the result and the server that answered."""
        tried: set[str] = set()
        while True:
            server = self.pick(routing_key, avoid=tried)
            limiter = self._limiter(server)
            try:
                if limiter is None:
                    result = await do(server)
                else:
                    async with limiter:
                        result = await do(server)
            except ModelError as exc:
                tried.add(server)
                if not _infrastructure_failure(exc) or len(tried) >= len(self.urls):
                    raise
                self.mark_down(server)
                self._pinned.pop(routing_key, None)
                self.failovers += 1
                continue
            return result, server


def _infrastructure_failure(exc: ModelError) -> bool:
    """A dead, overloaded or misbehaving server, as opposed to a request the server rejected
    (4xx): the transport decides per typed cause (``ModelError.can_fail_over``)."""
    return exc.can_fail_over


def normalize_base_url(url: str) -> str:
    """A server's base URL, checked: ``http(s)://host[:port][/prefix]`` without a trailing
    ``/`` or ``/v1`` (the clients add ``/v1/...`` and ``/generate`` themselves).

    Raises ``ValueError`` for an empty URL, one without a scheme or host, another scheme, a
    query or fragment, or a port that is not a number.
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError(f"a server base URL must be a non-empty string, got {url!r}")
    text = url.strip()
    if "://" not in text:
        raise ValueError(
            f"server base URL {url!r} has no scheme; write it like http://127.0.0.1:30000"
        )
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"server base URL {url!r}: the scheme must be http or https")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"server base URL {url!r}: invalid port") from exc
    host = parts.hostname
    if not host or any(c.isspace() for c in text) or (port is not None and port == 0):
        raise ValueError(f"server base URL {url!r} has no valid host[:port]")
    if parts.query or parts.fragment:
        raise ValueError(f"server base URL {url!r} must not have a query or fragment")
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[: -len("/v1")]
    return f"{parts.scheme}://{parts.netloc}{path}"
