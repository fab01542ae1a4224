"""The embedded model's fast paths against plain references, with no weights file needed.

- the block-major quantised matrices read from GGUF bytes (``Q4_1``, ``Q8_0``), against an
  independent row-by-row decoding of the same bytes: rebuilt rows exactly, products (one row,
  a few rows, a prompt's worth of rows, a subset of output rows) up to float rounding;
- the grammar's token classes, now decided with array operations, against their definitions;
- the byte-level table the tokenizer's token bytes come from.
"""

from __future__ import annotations

import pytest

pytest.importorskip("numpy")  # the embedded-model extra
import numpy as np
import numpy.typing as npt

from agentkit.models.embedded_weights import BLOCK, DENSE_FROM_ROWS, _q4_1, _q8_0
from agentkit.models.gguf_file import _byte_decoder, _byte_table
from agentkit.models.grammar_arithmetic import _CHARS
from agentkit.models.grammar_base import Vocabulary
from agentkit.models.grammar_reasoned import _body, _mixed, _plain, _prose_start, _split

ROWS, BLOCKS = 70, 5


def _halves(rng: np.random.Generator, shape: tuple[int, ...]) -> npt.NDArray[np.float16]:
    return rng.uniform(-0.1, 0.1, shape).astype(np.float16)


def q4_1_bytes(rng: np.random.Generator) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]]:
    """GGUF ``Q4_1`` bytes for a random matrix and the matrix they stand for, decoded by hand:
    per block, float16 scale d and offset m, then 16 bytes whose low nibbles are weights 0-15
    and high nibbles weights 16-31; weight = d * q + m."""
    d, m = _halves(rng, (ROWS, BLOCKS)), _halves(rng, (ROWS, BLOCKS))
    q = rng.integers(0, 16, (ROWS, BLOCKS, BLOCK), dtype=np.uint8)
    packed = q[:, :, :16] | (q[:, :, 16:] << 4)
    raw = np.concatenate(
        [d[..., None].view(np.uint8), m[..., None].view(np.uint8), packed], axis=2
    ).reshape(ROWS, -1)
    weights = np.empty((ROWS, BLOCKS * BLOCK), dtype=np.float32)
    for r in range(ROWS):
        for b in range(BLOCKS):
            for j in range(BLOCK):
                value = np.float32(d[r, b]) * np.float32(q[r, b, j]) + np.float32(m[r, b])
                weights[r, b * BLOCK + j] = value
    return np.ascontiguousarray(raw), weights


def q8_0_bytes(rng: np.random.Generator) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]]:
    """GGUF ``Q8_0``: per block a float16 scale d, then 32 signed bytes; weight = d * q."""
    d = _halves(rng, (ROWS, BLOCKS))
    q = rng.integers(-128, 128, (ROWS, BLOCKS, BLOCK), dtype=np.int8)
    raw = np.concatenate([d[..., None].view(np.uint8), q.view(np.uint8)], axis=2)
    weights = (d[..., None].astype(np.float32) * q.astype(np.float32)).reshape(ROWS, -1)
    return np.ascontiguousarray(raw.reshape(ROWS, -1)), weights


@pytest.mark.parametrize("kind", ["q4_1", "q8_0"])
def test_block_major_matrix_equals_the_decoded_gguf_bytes(kind: str) -> None:
    rng = np.random.default_rng(7)
    raw, weights = q4_1_bytes(rng) if kind == "q4_1" else q8_0_bytes(rng)
    matrix = _q4_1(raw) if kind == "q4_1" else _q8_0(raw)
    assert matrix.shape == weights.shape
    # block-major and contiguous: the kernels' batched products read each block as one slab
    assert matrix.q.shape == (BLOCKS, ROWS, BLOCK)
    assert matrix.q.dtype == (np.uint8 if kind == "q4_1" else np.int8)
    arrays = [matrix.q, matrix.scale] + ([] if matrix.offset is None else [matrix.offset])
    assert all(a.flags.c_contiguous for a in arrays)
    assert matrix.scale.shape == (BLOCKS, ROWS) and matrix.scale.dtype == np.float32
    assert (matrix.offset is None) == (kind == "q8_0")
    np.testing.assert_array_equal(matrix.dense(), weights)
    rows = np.asarray([3, 0, ROWS - 1, 41], dtype=np.int64)
    np.testing.assert_array_equal(matrix.take_rows(rows), weights[rows])
    for count in (1, 3, DENSE_FROM_ROWS + 2):  # decode, a few drafted rows, a prompt
        x = rng.standard_normal((count, weights.shape[1])).astype(np.float32)
        expected = x @ weights.T
        tolerance = 1e-5 * float(np.abs(expected).max())
        np.testing.assert_allclose(matrix.matmul(x), expected, rtol=0, atol=tolerance)
        np.testing.assert_allclose(
            matrix.matmul_rows(x, rows), expected[:, rows], rtol=0, atol=tolerance
        )


TOKENS = [b" ", b"  a", b" 5a", b"5", b" (17", b"),", b") is", b"a", b" +", b"3.", b"-x", b"\n"]


def test_token_classes_match_their_definitions() -> None:
    """Each class, decided with array operations over the whole vocabulary, against its
    definition written per token (the old predicates)."""

    def prose_start(r: bytes) -> bool:
        return r[:1] == b" " and set(r[1:]) <= _CHARS

    def body(r: bytes) -> bool:
        return set(r) <= _CHARS

    def mixed(r: bytes) -> bool:
        return bool(_split(r)[0].strip()) and not set(r) <= _CHARS

    def plain(r: bytes) -> bool:
        return not _split(r)[0].strip() and not set(r) <= _CHARS

    def json_safe(r: bytes) -> bool:
        return not any(b < 0x20 or b in (0x22, 0x5C, 0x7F) for b in r)

    every_byte = [bytes([b]) for b in range(256)] + [bytes([b, 0x61]) for b in range(256)]
    tokens = [b"", *TOKENS, *every_byte, *(b" " + t for t in every_byte), b"<|im_end|>"]
    vocab = Vocabulary(tokens, lambda text: [], special_ids=[len(tokens) - 1])
    classes = [
        (vocab.cached_mask_ids("prose_start", _prose_start), prose_start),
        (vocab.cached_mask_ids("body", _body), body),
        (vocab.cached_mask_ids("mixed", _mixed), mixed),
        (vocab.cached_mask_ids("plain", _plain), plain),
        (vocab.digit_ids, bytes.isdigit),
        (vocab.string_ids, json_safe),
    ]
    for ids, keep in classes:
        assert ids.tolist() == vocab.ids_where(keep).tolist(), keep
    assert len(vocab.cached_mask_ids("mixed", _mixed)) > 0  # ")," and " 5a" among them


def test_byte_table_turns_byte_level_characters_into_their_bytes() -> None:
    table = _byte_table()
    for char, byte in _byte_decoder().items():
        assert char.translate(table).encode("latin-1", "replace") == bytes([byte])
    assert "Ġhello".translate(table).encode("latin-1", "replace") == b" hello"
    # characters outside the byte-level alphabet become "?", as the old per-character lookup did
    assert " ".translate(table).encode("latin-1", "replace") == b"?"
    assert "\u4e2d".translate(table).encode("latin-1", "replace") == b"?"
