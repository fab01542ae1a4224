"""Which server a conversation talks to.

Several SGLang servers behind one client: each conversation is pinned to one server by its routing
key (so the server's radix cache keeps hitting) and moves only when that server fails.
"""

from __future__ import annotations

import hashlib


class ServerPool:
    """Base URLs with sticky, hash-based assignment and simple failure marking."""

    def __init__(self, base_urls: str | list[str]) -> None:
        urls = [base_urls] if isinstance(base_urls, str) else list(base_urls)
        if not urls:
            raise ValueError("at least one server base URL is needed")
        self.urls = [u.rstrip("/") for u in urls]
        self.down: set[str] = set()
        self._pinned: dict[str, str] = {}

    def pick(self, routing_key: str) -> str:
        current = self._pinned.get(routing_key)
        if current is not None and current not in self.down:
            return current
        alive = [u for u in self.urls if u not in self.down] or self.urls
        digest = int(hashlib.blake2b(routing_key.encode(), digest_size=8).hexdigest(), 16)
        chosen = alive[digest % len(alive)]
        self._pinned[routing_key] = chosen
        return chosen

    def mark_down(self, url: str) -> None:
        if len(self.down) + 1 < len(self.urls):
            self.down.add(url)

    def mark_up(self, url: str) -> None:
        self.down.discard(url)
