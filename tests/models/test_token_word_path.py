"""``HFTokenizersTokenizer.encode_stretch``: plain ASCII text between added tokens is split into
pre-tokens with ``re`` and each pre-token's ids come from a cache or the library's BPE model.
The ids must be exactly the library's ``encode`` for any text, with either usual byte-level
pre-tokenizer (GPT-2's ``ByteLevel(use_regex=True)``; ``Split`` + ``ByteLevel``, GLM-4's
shape), and the path must switch itself off for any pipeline it does not copy."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import (
    Regex,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)

import agentkit.tokenizer as tokenizer_module
from agentkit.testing import load_test_tokenizer
from agentkit.tokenizer import (
    HFTokenizersTokenizer,
    SegmentCache,
    _ascii_identity,
    _ascii_pattern,
    _WordEncoder,
    literal_trie,
    word_encoder,
)

# GLM-4's split (Qwen2's with up to three digits per number)
GLM4_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
CORPUS = [
    "You look things up with the lookup tool, then answer briefly. It's done; they'll see.",
    'value of k3 (#17) {"key": "value", "n": 12345} [1, 2, 3] x = f(a, b) + 1.5',
    "def lookup(key):\n    return table[key]  # comment\n\n\tTabs\r\nand   spaces",
    "Ünïcödé text, 日本語, emojis 🙂 and numbers 1234567890 in MiXeD CaSe",
]


def split_tokenizer(
    pattern: str = GLM4_SPLIT, normalizer: normalizers.Normalizer | None = None
) -> HFTokenizersTokenizer:
    """A small BPE trained here, pre-tokenized by ``Split(pattern)`` then ``ByteLevel``."""
    inner = Tokenizer(models.BPE())
    inner.normalizer = normalizer
    inner.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(pattern), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    inner.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=["<|user|>", "<|observation|>"],
        show_progress=False,
    )
    inner.train_from_iterator(CORPUS * 4, trainer=trainer)
    return HFTokenizersTokenizer(inner)


GPT2_STYLE = load_test_tokenizer()
GLM4_STYLE = split_tokenizer()
NFC_STYLE = split_tokenizer(normalizer=normalizers.NFC())

# mostly ASCII (what the word path takes), with what it must hand to the library mixed in
# (non-ASCII letters and digits, odd control characters, unusual whitespace)
ASCII = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
TEXT = st.text(
    st.one_of(
        ASCII,
        ASCII,
        ASCII,
        st.sampled_from(list("\t\n\r  '")),
        st.sampled_from(list("\x00\x0b\x0c\x1c\x1f\x7f\x85\xa0é日٣²\u2028\U0001f642")),
    ),
    max_size=60,
)


def library(tokenizer: HFTokenizersTokenizer, text: str) -> list[int]:
    ids: list[int] = tokenizer._inner.encode(text, add_special_tokens=False).ids
    return ids


def test_both_usual_shapes_get_the_word_path() -> None:
    # without this, the equality tests below would compare the library with itself
    assert word_encoder(GPT2_STYLE._inner) is not None
    assert word_encoder(GLM4_STYLE._inner) is not None
    assert word_encoder(NFC_STYLE._inner) is not None
    GPT2_STYLE.encode_stretch("warm")
    GLM4_STYLE.encode_stretch("warm")
    assert GPT2_STYLE._words is not None and GLM4_STYLE._words is not None


@pytest.mark.parametrize("tokenizer", [GPT2_STYLE, GLM4_STYLE], ids=["gpt2", "glm4"])
@settings(max_examples=300, deadline=None)
@given(text=TEXT)
def test_any_text_encodes_as_the_library_encodes_it(
    tokenizer: HFTokenizersTokenizer, text: str
) -> None:
    assert tokenizer.encode_stretch(text) == library(tokenizer, text)
    assert tokenizer.encode_stretch(text) == library(tokenizer, text), "again, from the cache"


@pytest.mark.parametrize("tokenizer", [GPT2_STYLE, GLM4_STYLE], ids=["gpt2", "glm4"])
def test_the_hard_cases_one_by_one(tokenizer: HFTokenizersTokenizer) -> None:
    cases = [
        "",
        "   x",
        "a  \n  b",
        "end   ",
        "\r\n\r\n",
        "It'S THEY'LL we'd've",
        "12345678901",
        "é is not ASCII",
        "tab\x0bvertical",
        "\x1cfile separator",
        'He said "no" -- twice!!',
    ]
    for text in cases:
        assert tokenizer.encode_stretch(text) == library(tokenizer, text), repr(text)


def test_the_word_path_is_what_answers_for_plain_ascii() -> None:
    words = word_encoder(GPT2_STYLE._inner)
    assert words is not None
    assert words.encode("value of k3 (#17)") == library(GPT2_STYLE, "value of k3 (#17)")
    assert words.encode("é") is None  # not ASCII: the library's
    assert words.encode("a\x0bb") is None  # a control character engines disagree on


def test_a_stretch_the_split_does_not_cover_goes_to_the_library() -> None:
    # an isolated split keeps the text between matches as pieces of their own (here the
    # letters, which a digits-only pattern never matches): the word path leaves such text alone
    digits = split_tokenizer(r"\p{N}+")
    split = _ascii_pattern(r"\p{N}+")
    assert split is not None
    assert _WordEncoder(digits._inner, split).encode("ab12") is None
    assert _WordEncoder(digits._inner, split).encode("12") == library(digits, "12")
    # and the probes (which hold letters) keep it from being used for this tokenizer at all
    assert word_encoder(digits._inner) is None
    assert digits.encode_stretch("ab12 cd") == library(digits, "ab12 cd")


def test_normal_forms_and_post_processors_keep_the_path() -> None:
    # GLM-4's and Qwen's tokenizers normalise to NFC (the identity on ASCII) and some add a
    # template's special tokens, which encode (add_special_tokens=False) never does
    inner = Tokenizer.from_str(GLM4_STYLE._inner.to_str())
    inner.normalizer = normalizers.NFC()
    inner.post_processor = processors.TemplateProcessing(
        single="<|user|> $A", special_tokens=[("<|user|>", inner.token_to_id("<|user|>"))]
    )
    assert inner.encode("ab", add_special_tokens=True).ids[0] == inner.token_to_id("<|user|>")
    words = word_encoder(inner)
    assert words is not None
    nfc = HFTokenizersTokenizer(inner)
    for text in ("Cafe\u0301 ok", "value of k3 (#17)", "x \r\n\ty", "fi\ufb01"):
        assert nfc.encode_stretch(text) == library(nfc, text), repr(text)
    inner.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.NFD()])
    assert word_encoder(inner) is not None
    # the normaliser check itself (the probes would also catch a lowercasing one)
    assert _ascii_identity(None) and _ascii_identity(normalizers.NFKD())
    assert not _ascii_identity(normalizers.Lowercase())
    assert not _ascii_identity(normalizers.Strip())
    assert not _ascii_identity(normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()]))
    inner.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    assert word_encoder(inner) is None


@settings(max_examples=200, deadline=None)
@given(text=TEXT)
def test_an_nfc_tokenizer_encodes_any_text_as_the_library(text: str) -> None:
    assert NFC_STYLE.encode_stretch(text) == library(NFC_STYLE, text)


def test_pipelines_the_path_does_not_copy_get_none() -> None:
    inner = Tokenizer.from_str(GPT2_STYLE._inner.to_str())
    inner.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    assert word_encoder(inner) is None
    inner.pre_tokenizer = pre_tokenizers.Metaspace()
    assert word_encoder(inner) is None
    inner.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    assert word_encoder(inner) is not None
    inner.normalizer = normalizers.Lowercase()
    assert word_encoder(inner) is None
    inner.normalizer = None
    inner.enable_truncation(8)
    assert word_encoder(inner) is None


def test_a_split_that_disagrees_with_the_library_is_not_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the probe texts catch a pattern that splits differently (here: numbers cut per digit)
    inner = GPT2_STYLE._inner
    assert word_encoder(inner) is not None
    wrong = tokenizer_module._GPT2_PATTERN.replace(r" ?\p{N}+", r" ?\p{N}")
    monkeypatch.setattr(tokenizer_module, "_GPT2_PATTERN", wrong)
    assert word_encoder(inner) is None


def test_patterns_re_cannot_copy_exactly_are_refused() -> None:
    assert _ascii_pattern(r"\P{L}+") is None  # negated property
    assert _ascii_pattern(r"\p{Lu}+") is None  # another property
    assert _ascii_pattern(r"^\s+|\s+$") is None  # line anchors in Oniguruma
    assert _ascii_pattern(r"[a[b]]") is None  # nested class
    assert _ascii_pattern(r"\h+") is None  # Oniguruma's hex digit, not a re escape
    copied = _ascii_pattern(r"[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}")
    assert copied is not None
    assert copied.findall(" abc12345") == [" abc", "123", "45"]


def test_segment_cache_ids_equal_a_whole_encode() -> None:
    cache = SegmentCache(GPT2_STYLE)
    text = "<|observation|>\n<tool_response>\nvalue of k3 (#17), é\n</tool_response><|assistant|>"
    assert cache.encode(text, keep=False) == GPT2_STYLE.encode(text)
    assert cache.encode(text) == GPT2_STYLE.encode(text)


ADDED = sorted(GPT2_STYLE.added_tokens())
SPLIT_TEXT = st.lists(
    st.one_of(
        st.sampled_from(ADDED),
        st.sampled_from(ADDED).map(lambda token: token[: len(token) // 2]),  # a cut token
        st.sampled_from(["<", "|", ">", "/", "[", "]", "<|", "|>", "<<", "a", " ", "\n"]),
    ),
    max_size=20,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(text=SPLIT_TEXT)
def test_the_trie_splits_as_the_longest_first_alternation(text: str) -> None:
    alternation = re.compile(
        "(" + "|".join(map(re.escape, sorted(ADDED, key=len, reverse=True))) + ")"
    )
    trie = re.compile(f"({literal_trie(ADDED)})")
    assert trie.split(text) == alternation.split(text)


def test_the_trie_takes_the_longest_word_at_a_place() -> None:
    trie = re.compile(f"({literal_trie(['ab', 'abc', 'b', 'abcd'])})")
    assert trie.findall("abcde ab abc xb") == ["abcd", "ab", "abc", "b"]
