"""Which server a conversation talks to.

Several SGLang servers behind one client: each conversation is pinned to one server by its routing
key (the episode id), so that server's radix cache keeps hitting. When the server fails (connection
refused, timeouts, 5xx after the transport's retries), the conversation's current call moves to
another live server and stays there; the failed server is probed again after a cool-down.
Each server can have a concurrency limit.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from agentkit.models.base import ModelError

T = TypeVar("T")


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
        self.urls = [u.rstrip("/") for u in urls]
        self.cooldown_s = cooldown_s
        self.max_concurrency_per_server = max_concurrency_per_server
        self._down_until: dict[str, float] = {}
        self._pinned: dict[str, str] = {}
        self._limiters: dict[str, anyio.CapacityLimiter] = {}
        self.failovers = 0

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
    """A dead or overloaded server, as opposed to a request the server rejected (4xx)."""
    if not exc.can_fail_over:
        return False
    if not exc.attempts:
        return True
    last = exc.attempts[-1]
    return last.status_code is None or last.status_code >= 500 or last.status_code == 429
