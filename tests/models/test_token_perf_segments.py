"""``SegmentCache``: encoding stretch by stretch, with repeated stretches remembered, gives
exactly the ids of a whole ``encode``; a tokenizer for which that does not hold is not split."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers

from agentkit.dialects import glm45
from agentkit.testing import load_test_tokenizer
from agentkit.tokenizer import HFTokenizersTokenizer, SegmentCache

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Look up a key.",
            "parameters": {"type": "object", "properties": {"key": {"type": "string"}}},
        },
    }
]


def texts() -> list[str]:
    """Rendered prompts and continuations, and text with tags glued to words and spaces."""
    messages = [
        {"role": "system", "content": "You look things up."},
        {"role": "user", "content": "Look up  k1, then\tk2 ."},
    ]
    out = [
        glm45.render(messages, TOOLS, enable_thinking=thinking, add_generation_prompt=prompt)
        for thinking in (True, False)
        for prompt in (True, False)
    ]
    tool = {"role": "tool", "tool_call_id": "c", "content": " value  of\nk1 "}
    out.append(glm45.render_continuation([tool], after_stop="<|observation|>"))
    out.append(glm45.render_continuation([tool], after_stop=None, enable_thinking=False))
    pieces = ["<think>", "</think>", "<|user|>", " ", "\n", "word", "x<tool_call>y", "  ", "é"]
    rng = random.Random(17)
    out += ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 30))) for _ in range(200)]
    out += ["", "<|assistant|>", "no tags at all"]
    return out


def test_stretch_by_stretch_ids_equal_whole_encoding_twice_over() -> None:
    tokenizer = load_test_tokenizer()
    cache = SegmentCache(tokenizer)
    for text in texts():
        expected = tokenizer.encode(text)
        assert cache.encode(text) == expected, text
        assert cache.encode(text) == expected, f"from the cache: {text!r}"


def test_the_ids_handed_out_are_never_the_cached_lists() -> None:
    cache = SegmentCache(load_test_tokenizer())
    first = cache.encode("hello there")
    first.append(1)
    assert cache.encode("hello there") == load_test_tokenizer().encode("hello there")


def test_a_full_cache_starts_over_and_long_stretches_are_not_kept() -> None:
    tokenizer = load_test_tokenizer()
    cache = SegmentCache(tokenizer, max_chars=40, max_piece_chars=20)
    for text in ["a" * 30, "short one", "another short", "b" * 15, "c" * 15, "d" * 15]:
        assert cache.encode(text) == tokenizer.encode(text)
        assert cache._chars <= 40
    assert "a" * 30 not in cache._cache


def stripping_tokenizer() -> HFTokenizersTokenizer:
    """A word-level tokenizer whose added token eats the spaces around it."""
    vocab = {"[UNK]": 0, "a": 1, "b": 2}
    inner = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    inner.pre_tokenizer = pre_tokenizers.Whitespace()
    inner.add_special_tokens([AddedToken("<x>", lstrip=True, rstrip=True)])
    return HFTokenizersTokenizer(inner)


@pytest.mark.parametrize("text", ["a <x> b", "a<x>b", " <x> "])
def test_a_tokenizer_whose_added_tokens_strip_is_encoded_whole(text: str) -> None:
    tokenizer = stripping_tokenizer()
    assert not tokenizer.added_tokens_split_exactly()
    cache = SegmentCache(tokenizer)
    assert cache.encode(text) == tokenizer.encode(text)
    assert cache._cache == {}, "nothing is split or kept for such a tokenizer"


def first_only_metaspace_tokenizer() -> HFTokenizersTokenizer:
    """A Llama-style tokenizer (Metaspace, ``prepend_scheme="first"``): only the start of the
    whole text gets the word marker, so a stretch after an added token encodes differently
    on its own (``world`` inside the text, ``▁world`` alone)."""
    vocab = {"[UNK]": 0, "▁hello": 1, "world": 2, "▁world": 3, "hello": 4}
    inner = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    inner.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="first")
    inner.add_special_tokens(["<|sys|>"])
    return HFTokenizersTokenizer(inner)


def test_a_pre_tokenizer_that_marks_only_the_first_stretch_is_encoded_whole() -> None:
    tokenizer = first_only_metaspace_tokenizer()
    text = "hello<|sys|>world"
    assert tokenizer.encode(text) != [*tokenizer.encode("hello"), 5, *tokenizer.encode("world")]
    assert not tokenizer.added_tokens_split_exactly()
    cache = SegmentCache(tokenizer)
    assert cache.encode(text) == tokenizer.encode(text)
    assert cache._cache == {}


def test_the_glm45_test_tokenizer_keeps_the_cache() -> None:
    assert load_test_tokenizer().added_tokens_split_exactly()


def test_unkept_text_encodes_alike_and_leaves_only_whitespace_stretches_behind() -> None:
    tokenizer = load_test_tokenizer()
    cache = SegmentCache(tokenizer)
    for text in texts():
        assert cache.encode(text, keep=False) == tokenizer.encode(text), text
    assert cache._cache, "whitespace stretches are kept"
    assert all(piece.isspace() for piece in cache._cache), "nothing else is kept"
    kept = cache.encode("value of k1", keep=True)
    assert "value of k1" in cache._cache
    assert cache.encode("\n<tool_response>value of k1", keep=False) == tokenizer.encode(
        "\n<tool_response>value of k1"
    )
    assert cache._cache["value of k1"] == kept, "a kept stretch is read back, not replaced"


# encode_joined: a first prompt's fixed start kept apart from its messages

JOIN_PIECES = [
    "<|system|>",
    "<|user|>",
    "</tool_call>",
    "<sop>",
    "[gMASK]",
    "<|us",  # the start of an added token
    "</tool_",
    "<",
    "|>",
    " ",
    "\n",
    "word",
    "é",
]
JOINED_TEXT = st.lists(st.sampled_from(JOIN_PIECES), max_size=8).map("".join)


@settings(max_examples=300, deadline=None)
@given(head=JOINED_TEXT, tail=JOINED_TEXT)
def test_a_head_and_tail_encode_as_the_joined_text(head: str, tail: str) -> None:
    tokenizer = load_test_tokenizer()
    cache = SegmentCache(tokenizer)
    for _ in range(2):  # the head's ids worked out, then kept
        assert cache.encode_joined(head, tail) == tokenizer.encode(head + tail)


def test_a_head_that_may_not_end_a_split_is_encoded_with_its_tail() -> None:
    tokenizer = load_test_tokenizer()
    cache = SegmentCache(tokenizer)
    prompt_head = "[gMASK]<sop>" + glm45.tools_block(TOOLS)
    for head in ["[gMASK]<sop>", prompt_head]:
        assert cache.encode_joined(head, "<|user|>\nq") == tokenizer.encode(head + "<|user|>\nq")
        assert cache._heads[head] == tokenizer.encode(head), "kept"
    for head in ["[gMASK]<sop>text", "no tags", "", "<|user|><|us"]:
        assert cache.encode_joined(head, "er|>x") == tokenizer.encode(head + "er|>x")
        assert cache._heads[head] is None, "the split could run on into the tail"


def test_a_longer_added_token_across_the_join_is_found() -> None:
    """An added token that starts with another one: a head ending with the shorter one may
    run on into the longer one in the tail, so it is not kept apart."""
    inner = Tokenizer.from_file(load_test_tokenizer().source)
    inner.add_special_tokens(["<|user|>x"])
    tokenizer = HFTokenizersTokenizer(inner)
    assert tokenizer.added_tokens_split_exactly()
    cache = SegmentCache(tokenizer)
    expected = tokenizer.encode("a<|user|>xy")
    longer = tokenizer.token_to_id("<|user|>x")
    assert longer is not None and expected.count(longer) == 1
    assert cache.encode_joined("a<|user|>", "xy") == expected
    assert cache._heads["a<|user|>"] is None


def test_the_heads_kept_are_bounded() -> None:
    tokenizer = load_test_tokenizer()
    cache = SegmentCache(tokenizer)
    for number in range(200):
        head = f"<|user|>{number}<|system|>"
        assert cache.encode_joined(head, " t") == tokenizer.encode(head + " t")
    assert len(cache._heads) <= 64
