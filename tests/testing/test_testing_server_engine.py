"""The test server's toy engine: prefix cache, log-probs, speculative steps, segment encoder."""

from __future__ import annotations

import json
import math
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentkit.testing import (
    Completion,
    SGLangTestServer,
    build_test_tokenizer,
    load_test_tokenizer,
)
from agentkit.testing.engine import Engine, PrefixCache, speculative_steps
from agentkit.testing.segment_cache import SegmentCachedEncoder
from agentkit.tokenizer import HFTokenizersTokenizer

TOKENS = st.lists(st.integers(min_value=0, max_value=40), max_size=70)


def brute_force_match(stored: list[list[int]], query: list[int]) -> int:
    best = 0
    for seq in stored:
        size = 0
        while size < min(len(seq), len(query)) and seq[size] == query[size]:
            size += 1
        best = max(best, size)
    return best


@settings(max_examples=100, deadline=None)
@given(stored=st.lists(TOKENS, max_size=6), query=TOKENS)
def test_prefix_cache_matches_brute_force(stored: list[list[int]], query: list[int]) -> None:
    cache = PrefixCache()
    for seq in stored:
        cache.insert(seq)
    assert cache.match(query) == brute_force_match(stored, query)


def test_prefix_cache_flush_and_eviction() -> None:
    cache = PrefixCache(max_blocks=3)
    cache.insert(list(range(40)))
    assert cache.match([*list(range(35)), 99]) == 35
    cache.flush()
    assert cache.match(list(range(40))) == 0
    cache.insert(list(range(100)))  # more blocks than allowed: the next insert evicts
    cache.insert([7, 7])
    assert cache.match(list(range(100))) == 0
    assert cache.match([7, 7, 7]) == 2


def test_speculative_steps() -> None:
    assert speculative_steps(0, 2.0) == []
    assert speculative_steps(5, None) == [1] * 5
    for count in (1, 7, 100):
        for accept in (1.5, 2.0, 2.7, 4.0):
            steps = speculative_steps(count, accept)
            assert sum(steps) == count
            assert all(1 <= s <= 4 for s in steps)
            if count == 100:
                assert abs(len(steps) - math.ceil(count / accept)) <= 1


def test_logprobs_are_negative_deterministic_and_prefix_dependent() -> None:
    tokenizer = load_test_tokenizer()
    engine = Engine(tokenizer)
    other = Engine(tokenizer)
    completion = Completion("the the the the")
    first = engine.generate([1, 2, 3], completion, max_new_tokens=None)
    again = other.generate([1, 2, 3], completion, max_new_tokens=None)
    shifted = engine.generate([1, 2, 4], completion, max_new_tokens=None)
    assert first.logprobs == again.logprobs
    assert first.logprobs != shifted.logprobs
    assert all(lp < 0 for lp in first.logprobs)
    assert len(set(first.logprobs)) > 1  # repeated tokens at different positions differ


@settings(max_examples=100, deadline=None)
@given(
    parts=st.lists(
        st.one_of(
            st.text(max_size=12),
            st.sampled_from(
                ["<|user|>", "<think>", "</think>", "<|use", "/nothink", "<tool_call>"]
            ),
        ),
        max_size=8,
    )
)
def test_segment_encoder_equals_full_encode(parts: list[str]) -> None:
    tokenizer = load_test_tokenizer()
    encoder = SegmentCachedEncoder(tokenizer)
    text = "".join(parts)
    assert encoder.encode(text) == tokenizer.encode(text)
    assert encoder.encode(text) == tokenizer.encode(text)  # from the cache


def test_segment_encoder_falls_back_when_tokens_strip_whitespace(tmp_path: Path) -> None:
    data = json.loads(build_test_tokenizer(tmp_path).read_text())
    for added in data["added_tokens"]:
        if added["content"] == "<|user|>":
            added["rstrip"] = True
    path = tmp_path / "stripping.json"
    path.write_text(json.dumps(data))
    tokenizer = HFTokenizersTokenizer.from_file(path)
    assert not tokenizer.added_tokens_split_exactly()
    encoder = SegmentCachedEncoder(tokenizer)
    text = "hi<|user|>   \n spaced"
    assert encoder.encode(text) == tokenizer.encode(text)


def test_server_accepts_a_tokenizer_folder(tmp_path: Path) -> None:
    folder = build_test_tokenizer(tmp_path).parent
    with SGLangTestServer(policy=["<think>a</think>\nb"], tokenizer=folder) as server:
        assert server.tokenizer.vocab_size == 151552
        reply = httpx.post(
            f"{server.base_url}/generate", json={"text": "[gMASK]<sop><|user|>\nq<|assistant|>"}
        ).json()
    assert reply["output_ids"][-1] == 151336
    with pytest.raises((TypeError, FileNotFoundError)):  # no tokenizer.json there
        SGLangTestServer(policy=[], tokenizer=tmp_path)
