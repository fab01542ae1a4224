"""``HFTokenizersTokenizer.decode`` decodes a ByteLevel tokenizer's ids itself (a byte table)
and must give exactly the ``tokenizers`` library's text for any ids: partial UTF-8 tokens,
invalid bytes before added tokens, added tokens written in the byte alphabet, unknown ids."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

from agentkit.testing import load_test_tokenizer
from agentkit.tokenizer import HFTokenizersTokenizer, _byte_alphabet


def byte_level_tokenizer() -> HFTokenizersTokenizer:
    """All 256 byte tokens, some multi-byte tokens (whole and partial UTF-8 characters) and
    added tokens, one of them spelled in the byte alphabet (``Ġx``)."""
    alphabet = {byte: char for char, byte in _byte_alphabet().items()}
    vocab = {alphabet[byte]: byte for byte in range(256)}
    for word in ("é", "日本", "hello", " world"):
        vocab["".join(alphabet[b] for b in word.encode())] = len(vocab)
    vocab["".join(alphabet[b] for b in "日".encode()[:2])] = len(vocab)  # a partial character
    inner = Tokenizer(models.BPE(vocab, []))
    inner.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    inner.decoder = decoders.ByteLevel()
    inner.add_special_tokens(["<|user|>", AddedToken("Ġx", special=True)])
    inner.add_tokens(["<think>", "ünï"])
    return HFTokenizersTokenizer(inner)


TOKENIZER = byte_level_tokenizer()
SIZE = TOKENIZER.vocab_size


def library(tokenizer: HFTokenizersTokenizer, ids: list[int]) -> str:
    return tokenizer._inner.decode(ids, skip_special_tokens=False)


def test_the_byte_table_is_used_for_a_byte_level_decoder_only() -> None:
    assert TOKENIZER._byte_pieces is not None
    assert load_test_tokenizer()._byte_pieces is not None
    inner = Tokenizer(models.WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]"))
    assert HFTokenizersTokenizer(inner)._byte_pieces is None
    inner.decoder = decoders.Sequence([decoders.ByteLevel(), decoders.Strip(" ", 1, 0)])
    assert HFTokenizersTokenizer(inner)._byte_pieces is None


@settings(max_examples=400, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=SIZE + 3), max_size=40))
def test_any_ids_decode_as_the_library_decodes_them(ids: list[int]) -> None:
    assert TOKENIZER.decode(ids) == library(TOKENIZER, ids)
    assert TOKENIZER.decode(ids) == library(TOKENIZER, ids), "again, from the kept bytes"


def test_the_hard_cases_one_by_one() -> None:
    partial = SIZE - 5  # the two first bytes of a three-byte character (see the vocab)
    user, spelled = TOKENIZER.token_to_id("<|user|>"), TOKENIZER.token_to_id("Ġx")
    assert user is not None and spelled is not None
    cases = [
        [],
        [0xE6, 0x97],  # a character cut off at the end
        [partial, user],  # cut off before an added token
        [partial, 0xA5],  # completed by the next byte token
        [
            spelled,
            0x41,
        ],  # an added token spelled in the byte alphabet is mapped, as the library does
        [0xFF, 0xFE, 0x80],  # bytes that are never UTF-8
        [0xED, 0xA0, 0x80],  # a surrogate's encoding
        [SIZE + 1, 0x41],  # an unknown id gives nothing
    ]
    for ids in cases:
        assert TOKENIZER.decode(ids) == library(TOKENIZER, ids), ids


def test_the_glm45_test_tokenizer_decodes_its_own_encodings_as_the_library() -> None:
    tokenizer = load_test_tokenizer()
    for text in ("<think>héllo wörld 日本</think>\n<tool_call>x\n", "  \n\t<|observation|>", "é"):
        ids = tokenizer.encode(text)
        assert tokenizer.decode(ids) == library(tokenizer, ids) == text


def test_skipping_special_tokens_and_odd_ids_go_to_the_library() -> None:
    user = TOKENIZER.token_to_id("<|user|>")
    assert user is not None
    assert TOKENIZER.decode([0x41, user], skip_special_tokens=True) == "A"
    for bad in ([-1], [1 << 40]):
        try:
            expected: object = library(TOKENIZER, bad)
        except Exception as exc:  # whatever the library raises, this raises too
            expected = type(exc)
        try:
            got: object = TOKENIZER.decode(bad)
        except Exception as exc:
            got = type(exc)
        assert got == expected, bad


class _Disagreeing:
    """The library's tokenizer, except that one token decodes to other text (as a library
    version that decodes some token its own way would)."""

    def __init__(self, inner: Tokenizer, odd_id: int) -> None:
        self._inner, self._odd = inner, odd_id

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        text = self._inner.decode(ids, skip_special_tokens=skip_special_tokens)
        return text + "?" if self._odd in ids else text

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


def test_the_table_is_used_only_when_a_probe_decodes_as_the_library() -> None:
    agreeing = byte_level_tokenizer()
    assert agreeing.decode([104, 105]) == "hi"
    assert agreeing._table_checked and agreeing._byte_pieces is not None
    for odd in (104, agreeing.token_to_id("<think>")):  # a plain token, an added one
        assert odd is not None
        tokenizer = byte_level_tokenizer()
        tokenizer._inner = _Disagreeing(tokenizer._inner, odd)  # type: ignore[assignment]
        assert tokenizer.decode([odd, 105]) == library(tokenizer, [odd, 105])
        assert tokenizer._byte_pieces is None  # the library decides from now on


def test_skipping_nothing_is_kept_when_an_id_is_not_plain() -> None:
    tokenizer = load_test_tokenizer()  # a large vocabulary: the probe leaves most ids out
    special = min(tokenizer.special_ids)
    tokenizer.decode([special])  # the probe has run
    unseen = next(i for i in range(600, 5000) if i not in tokenizer._byte_pieces)  # type: ignore[operator]
    # numpy ints the table has not seen go to the library, which still keeps the special token
    ids = [np.int64(special), np.int64(unseen)]
    expected = library(tokenizer, [special, unseen])
    assert tokenizer._inner.decode([special], skip_special_tokens=False) in expected
    assert tokenizer.decode(ids) == expected  # type: ignore[arg-type]


def test_no_one_and_several_ids_decode_as_the_library() -> None:
    """The pieces of several ids are taken in one call (an itemgetter), of one id alone (whose
    itemgetter would give the piece, not a tuple of pieces) one by one."""
    hello = TOKENIZER.token_to_id("hello")
    user = TOKENIZER.token_to_id("<|user|>")
    assert hello is not None and user is not None
    for ids in ([], [hello], [user], [hello, user], (hello, hello, user), [SIZE + 2]):
        assert TOKENIZER.decode(ids) == library(TOKENIZER, list(ids)), ids
    array = np.array([hello, user, hello])
    assert TOKENIZER.decode(array) == library(TOKENIZER, [hello, user, hello])  # type: ignore[arg-type]
