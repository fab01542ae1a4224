"""Faster prompt encoding for the test server: cache the encoding of text between added tokens.

A ``tokenizers`` tokenizer cuts the text at added tokens (``<|user|>``, ``<think>`` ...) before
anything else, so each stretch between them is encoded independently. Agent loops resend the
same system prompt, tool block and history every turn; caching each stretch's ids makes a
prompt cost only its new text, with ids identical to a full ``encode``.
"""

from __future__ import annotations

import re
import threading

from agentkit.tokenizer import HFTokenizersTokenizer

__all__ = ["SegmentCachedEncoder"]


class SegmentCachedEncoder:
    def __init__(self, tokenizer: HFTokenizersTokenizer, *, max_entries: int = 50_000) -> None:
        self._tokenizer = tokenizer
        self._added = tokenizer.added_tokens() if tokenizer.added_tokens_split_exactly() else {}
        # Longest first, so that a token is never split by a shorter one it contains.
        alternatives = sorted(self._added, key=len, reverse=True)
        self._split = (
            re.compile("(" + "|".join(map(re.escape, alternatives)) + ")") if alternatives else None
        )
        self._cache: dict[str, list[int]] = {}
        self._max_entries = max_entries
        self._lock = threading.Lock()

    def encode(self, text: str) -> list[int]:
        if self._split is None:
            return self._tokenizer.encode(text)
        ids: list[int] = []
        for index, piece in enumerate(self._split.split(text)):
            if not piece:
                continue
            if index % 2:
                ids.append(self._added[piece])
                continue
            cached = self._cache.get(piece)
            if cached is None:
                cached = self._tokenizer.encode(piece)
                with self._lock:
                    if len(self._cache) >= self._max_entries:
                        self._cache.clear()
                    self._cache[piece] = cached
            ids.extend(cached)
        return ids
