"""The test server's toy inference engine: stops, truncation, log-probs, prefix cache, EAGLE stats.

Generation itself is scripted (the policy writes the text); this module turns that text into
what an SGLang engine reports: output token ids cut at the first stop token or at the token
budget, a deterministic negative log-prob per token (a hash of prefix and token), the number of
prompt tokens found in a radix-like prefix cache, and speculative-decoding verify steps for a
configured mean accept length.

Log-probs are a pure function of (prompt ids, output ids before the token, token): the same
request always gets the same values, and values differ across prefixes like a model's would.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from agentkit.dialects.glm45 import STOP_TOKEN_IDS
from agentkit.tokenizer import HFTokenizersTokenizer

from .policy import AUTO_STOP, Completion

__all__ = ["Engine", "Generation", "PrefixCache", "speculative_steps"]

_MOD = (1 << 61) - 1
_BASE = 1_000_003
_MIX = 0x9E3779B97F4A7C15 % _MOD


def _roll(state: int, token: int) -> int:
    return (state * _BASE + token + 1) % _MOD


def _prefix_states(ids: Iterable[int], start: int = 0) -> list[int]:
    states = []
    state = start
    for token in ids:
        state = _roll(state, token)
        states.append(state)
    return states


def _sequence_key(ids: Sequence[int]) -> int:
    """A deterministic hash of a whole token sequence (tuple hashing of ints is not salted)."""
    return hash(tuple(ids)) % _MOD


def token_logprob(prefix_state: int, token: int) -> float:
    """A deterministic, negative log-prob for ``token`` after the prefix with hash
    ``prefix_state``. Most tokens are likely (close to 0), a few are not, like a real model."""
    mixed = ((prefix_state ^ _MIX) * 6364136223846793005 + token * 1442695040888963407) % _MOD
    fraction = mixed / _MOD
    return -round(1e-4 + 6.0 * fraction**4, 6)


_BLOCK = 16


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    size = min(len(a), len(b))
    index = 0
    while index < size and a[index] == b[index]:
        index += 1
    return index


class PrefixCache:
    """Longest cached prefix of a prompt over all earlier requests' input + output ids.

    A radix tree over blocks of 16 tokens: full blocks are keyed by the chained hash of the
    blocks before them, and each node keeps its child blocks (by first token) so that the match
    inside the last, partial block is exact to the token. When it holds more than
    ``max_blocks`` blocks it is flushed, as a full cache would evict.
    """

    def __init__(self, max_blocks: int = 500_000) -> None:
        self._full: set[int] = set()
        self._children: dict[int, dict[int, set[tuple[int, ...]]]] = {}
        self._size = 0
        self._max_blocks = max_blocks
        self._lock = threading.Lock()

    def flush(self) -> None:
        with self._lock:
            self._full.clear()
            self._children.clear()
            self._size = 0

    def __len__(self) -> int:
        return self._size

    def match(self, ids: Sequence[int]) -> int:
        """Number of leading tokens of ``ids`` that some earlier sequence shares."""
        matched = 0
        node = 0
        with self._lock:
            for start in range(0, len(ids), _BLOCK):
                block = tuple(ids[start : start + _BLOCK])
                if len(block) == _BLOCK:
                    child = hash((node, block))
                    if child in self._full:
                        matched += _BLOCK
                        node = child
                        continue
                candidates = self._children.get(node, {}).get(block[0], ())
                return matched + max((_common_prefix(block, c) for c in candidates), default=0)
        return matched

    def insert(self, ids: Sequence[int]) -> None:
        node = 0
        with self._lock:
            if self._size > self._max_blocks:
                self._full.clear()
                self._children.clear()
                self._size = 0
            for start in range(0, len(ids), _BLOCK):
                block = tuple(ids[start : start + _BLOCK])
                bucket = self._children.setdefault(node, {}).setdefault(block[0], set())
                if block not in bucket:
                    bucket.add(block)
                    self._size += 1
                if len(block) < _BLOCK:
                    break
                node = hash((node, block))
                self._full.add(node)


def speculative_steps(num_tokens: int, accept_length: float | None) -> list[int]:
    """Tokens produced per decoding step: 1 each without speculation, else a deterministic
    split whose mean is ``accept_length`` (at most 4 per step: 3 draft tokens + 1)."""
    if num_tokens <= 0:
        return []
    if accept_length is None or accept_length <= 1.0:
        return [1] * num_tokens
    steps: list[int] = []
    produced = 0
    k = 0
    while produced < num_tokens:
        size = math.floor((k + 1) * accept_length) - math.floor(k * accept_length)
        size = max(1, min(size, 4, num_tokens - produced))
        steps.append(size)
        produced += size
        k += 1
    return steps


@dataclass
class Generation:
    """One finished (scripted) generation as the engine reports it."""

    prompt_ids: list[int]
    output_ids: list[int]
    logprobs: list[float]
    finish_reason: dict[str, Any]
    matched_stop: int | str | None
    cached_tokens: int
    steps: list[int]

    @property
    def stopped(self) -> bool:
        return bool(self.finish_reason["type"] == "stop")

    @property
    def stop_token_trimmed_ids(self) -> list[int]:
        """Output ids without a matched stop token (what the text is decoded from)."""
        if isinstance(self.matched_stop, int) and self.output_ids:
            return self.output_ids[:-1]
        return self.output_ids

    def spec_meta(self, accept_length: float | None, draft_tokens: int = 4) -> dict[str, Any]:
        if accept_length is None:
            return {}
        verify = len(self.steps)
        completion = len(self.output_ids)
        correct = completion - verify
        return {
            "spec_verify_ct": verify,
            "spec_accept_length": completion / verify if verify else 0.0,
            "spec_accept_rate": correct / (verify * (draft_tokens - 1)) if verify else 0.0,
            "spec_num_correct_drafts": correct,
            "spec_num_proposed_drafts": verify * (draft_tokens - 1),
        }


class Engine:
    def __init__(
        self,
        tokenizer: HFTokenizersTokenizer,
        *,
        encode: Callable[[str], list[int]] | None = None,
        accept_length: float | None = 2.0,
        eos_token_ids: Sequence[int] = STOP_TOKEN_IDS,
    ) -> None:
        if accept_length is not None and not 1.0 <= accept_length <= 4.0:
            raise ValueError("accept_length must be between 1.0 and 4.0 (or None to disable)")
        self.tokenizer = tokenizer
        self.encode = encode or tokenizer.encode
        self.accept_length = accept_length
        self.eos_token_ids = tuple(eos_token_ids)
        self.cache = PrefixCache()

    def completion_ids(self, completion: Completion) -> list[int]:
        """Token ids the scripted model emits: the text, then its stop token(s)."""
        ids = self.encode(completion.text)
        stop = completion.stop
        if stop == AUTO_STOP:
            stop = "<|observation|>" if "</tool_call>" in completion.text else "<|user|>"
        if stop:
            stop_id = self.tokenizer.token_to_id(stop)
            ids.extend([stop_id] if stop_id is not None else self.tokenizer.encode(stop))
        return ids

    def generate(
        self,
        prompt_ids: list[int],
        completion: Completion,
        *,
        max_new_tokens: int | None,
        stop_token_ids: Iterable[int] = (),
        stop_strings: Sequence[str] = (),
        ignore_eos: bool = False,
    ) -> Generation:
        candidate = self.completion_ids(completion)
        limit = len(candidate) if max_new_tokens is None else max(0, max_new_tokens)
        stops = set(stop_token_ids)
        if not ignore_eos:
            stops.update(self.eos_token_ids)
        output: list[int] = []
        finish: dict[str, Any] | None = None
        matched: int | str | None = None
        for token in candidate[:limit]:
            output.append(token)
            if token in stops:
                finish, matched = {"type": "stop", "matched": token}, token
                break
            if stop_strings:
                text = self.tokenizer.decode(output)
                hit = next((s for s in stop_strings if s and s in text), None)
                if hit is not None:
                    finish, matched = {"type": "stop", "matched": hit}, hit
                    break
        if finish is None:
            finish = {"type": "length", "length": len(output)}
        # SGLang always recomputes at least the last prompt token.
        cached = min(self.cache.match(prompt_ids), max(0, len(prompt_ids) - 1))
        prompt_key = _sequence_key(prompt_ids)
        output_states = _prefix_states(output, prompt_key)
        logprobs = [
            token_logprob(prompt_key if i == 0 else output_states[i - 1], token)
            for i, token in enumerate(output)
        ]
        self.cache.insert([*prompt_ids, *output])
        return Generation(
            prompt_ids=prompt_ids,
            output_ids=output,
            logprobs=logprobs,
            finish_reason=finish,
            matched_stop=matched,
            cached_tokens=cached,
            steps=speculative_steps(len(output), self.accept_length),
        )

    def input_logprobs(self, generation: Generation, start: int) -> list[list[Any]]:
        """``[logprob, id, None]`` for prompt positions from ``start`` (first one ``None``)."""
        ids = generation.prompt_ids
        states = _prefix_states(ids) if start >= 0 else []
        out: list[list[Any]] = []
        for position in range(max(0, start), len(ids)):
            value = None if position == 0 else token_logprob(states[position - 1], ids[position])
            out.append([value, ids[position], None])
        return out
