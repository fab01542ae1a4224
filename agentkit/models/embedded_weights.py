"""The embedded model's weights, read from a GGUF file and kept quantised in memory.

A GGUF ``Q4_1`` or ``Q8_0`` tensor is a matrix cut along its columns into blocks of 32 weights,
each block ``scale * q + offset`` with small integers ``q`` (0..15 for Q4_1, -128..127 for Q8_0).
:class:`BlockMatrix` keeps ``q`` as one byte per weight plus the float32 scales and offsets,
a quarter of the float32 size, stored block-major (block ``b`` of every row side by side), and
multiplies without ever holding the whole float32 matrix:

- up to ``DENSE_FROM_ROWS`` rows of activations (decoding, drafted tokens): ``x @ W.T`` per
  block, ``scale * (q_b @ x_b) + offset * sum(x_b)``, summed over blocks; ``q`` is widened to
  float32 in chunks of ``CHUNK_ROWS`` rows and each block is one contiguous slab, so the block
  products are one batched matrix product. Equal to the float32 product up to float rounding
  (the sums run in another order).
- more rows (a prompt): the float32 weights are rebuilt exactly as ``gguf`` dequantises them
  (``scale * q + offset``), one matrix at a time, and multiplied with BLAS; the result is the
  same, bit for bit, as with float32 weights held in memory.

Other tensor types are dequantised to float32 (:class:`DenseMatrix`; types other than F32 and
F16 need the ``gguf`` package).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

try:
    import numpy as np
    import numpy.typing as npt
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError("the embedded model needs numpy: pip install 'agentkit[embedded]'") from exc

from .gguf_file import (
    F16_TYPE,
    F32_TYPE,
    Q4_1_TYPE,
    Q8_0_TYPE,
    GgufFile,
    GgufFormatError,
    TensorInfo,
)

F32 = npt.NDArray[np.float32]
Ids = npt.NDArray[np.int64]

BLOCK = 32
# From this many activation rows on, a product rebuilds the float32 weights and uses one BLAS call.
DENSE_FROM_ROWS = 48
# Rows of weights widened at once on the per-block path (keeps the float32 chunk in cache).
CHUNK_ROWS = 4096


class EmbeddedModelUnavailable(RuntimeError):
    """The weights file or the ``gguf`` reader is not installed."""


class Matrix(Protocol):
    @property
    def shape(self) -> tuple[int, int]: ...

    def matmul(self, x: F32) -> F32:
        """``x @ W.T`` for activations ``x`` of shape (n, columns)."""
        ...

    def matmul_rows(self, x: F32, rows: Ids) -> F32:
        """``x @ W[rows].T``: the product with a subset of the rows only."""
        ...

    def take_rows(self, rows: Ids) -> F32:
        """``W[rows]`` in float32 (an embedding lookup)."""
        ...

    def dense(self) -> F32: ...


@dataclass(frozen=True)
class DenseMatrix:
    w: F32

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.w.shape[0]), int(self.w.shape[1]))

    def matmul(self, x: F32) -> F32:
        out: F32 = x @ self.w.T
        return out

    def matmul_rows(self, x: F32, rows: Ids) -> F32:
        out: F32 = x @ self.w[rows].T
        return out

    def take_rows(self, rows: Ids) -> F32:
        out: F32 = self.w[rows]
        return out

    def dense(self) -> F32:
        return self.w


@dataclass(frozen=True)
class BlockMatrix:
    """``W[r, 32 * b + j] = scale[b, r] * q[b, r, j] + offset[b, r]`` (offset 0 when ``None``).

    Stored block-major: ``q[b]`` holds block ``b`` of every row contiguously, so the per-block
    products are one batched matrix product over contiguous slabs (no transposed copies).
    """

    q: npt.NDArray[np.uint8] | npt.NDArray[np.int8]  # (blocks, rows, 32)
    scale: F32  # (blocks, rows)
    offset: F32 | None  # (blocks, rows)

    @property
    def shape(self) -> tuple[int, int]:
        blocks, rows, _ = self.q.shape
        return (int(rows), int(blocks) * BLOCK)

    def _dense(self, rows: slice | Ids) -> F32:
        """``W[rows]`` in float32, each weight ``scale * q + offset`` as ``gguf`` computes it.
        Widened straight into row order (the transposition rides on the one copy)."""
        q = self.q[:, rows]  # (blocks, n, 32)
        blocks, count, _ = q.shape
        dense = np.empty((count, blocks, BLOCK), dtype=np.float32)
        np.copyto(dense, q.transpose(1, 0, 2), casting="unsafe")
        dense *= self.scale[:, rows].T[:, :, None]
        if self.offset is not None:
            dense += self.offset[:, rows].T[:, :, None]
        out: F32 = dense.reshape(count, blocks * BLOCK)
        return out

    def dense(self) -> F32:
        return self._dense(slice(None))

    def take_rows(self, rows: Ids) -> F32:
        return self._dense(rows)

    def _per_block(self, x: F32, rows: slice | Ids) -> F32:
        blocks = self.q.shape[0]
        # contiguous (blocks, 32, n_x): a strided operand would make matmul copy per block
        xb = np.ascontiguousarray(x.reshape(x.shape[0], blocks, BLOCK).transpose(1, 2, 0))
        widened = self.q[:, rows].astype(np.float32)  # (blocks, n, 32)
        partial = np.matmul(widened, xb)  # (blocks, n, n_x)
        out: F32 = np.einsum("bnt,bn->tn", partial, self.scale[:, rows])
        if self.offset is not None:
            out += xb.sum(axis=1).T @ self.offset[:, rows]
        return out

    def matmul(self, x: F32) -> F32:
        rows = self.q.shape[1]
        if x.shape[0] >= DENSE_FROM_ROWS:
            dense: F32 = x @ self.dense().T
            return dense
        if rows <= CHUNK_ROWS:
            return self._per_block(x, slice(None))
        return np.concatenate(
            [
                self._per_block(x, slice(start, start + CHUNK_ROWS))
                for start in range(0, rows, CHUNK_ROWS)
            ],
            axis=1,
        )

    def matmul_rows(self, x: F32, rows: Ids) -> F32:
        return self._per_block(x, rows)


# one GGUF block's bytes: float16 scale (and offset), then the packed integers
_Q4_1_BYTES = 4 + BLOCK // 2
_Q8_0_BYTES = 2 + BLOCK
_HALF = np.dtype("<f2")


def _halves(fields: npt.NDArray[np.uint8]) -> F32:
    """Blocks' leading bytes (rows, blocks, 2 * k) as their k float16 values in float32, laid
    out (k, blocks, rows)."""
    values = np.ascontiguousarray(fields).view(_HALF)  # (rows, blocks, k)
    out: F32 = np.ascontiguousarray(values.transpose(2, 1, 0), dtype=np.float32)
    return out


def _q4_1(data: npt.NDArray[np.uint8]) -> BlockMatrix:
    """The GGUF bytes (rows, row bytes) read as byte columns, not as records: the packed
    nibbles are split straight into the block-major layout (a copy of records moved whole
    blocks more slowly than the split moves bytes)."""
    rows = data.shape[0]
    raw = data.reshape(rows, -1, _Q4_1_BYTES)
    packed = np.ascontiguousarray(raw[:, :, 4:].transpose(1, 0, 2))  # (blocks, rows, 16)
    q = np.empty((*packed.shape[:2], BLOCK), dtype=np.uint8)
    np.bitwise_and(packed, 0x0F, out=q[:, :, : BLOCK // 2])
    np.right_shift(packed, 4, out=q[:, :, BLOCK // 2 :])
    scale, offset = _halves(raw[:, :, :4])
    return BlockMatrix(q=q, scale=scale, offset=offset)


def _q8_0(data: npt.NDArray[np.uint8]) -> BlockMatrix:
    rows = data.shape[0]
    raw = data.reshape(rows, -1, _Q8_0_BYTES)
    q = np.ascontiguousarray(raw[:, :, 2:].transpose(1, 0, 2)).view(np.int8)
    return BlockMatrix(q=q, scale=_halves(raw[:, :, :2])[0], offset=None)


def limit_blas_threads(threads: int) -> bool:
    """Set numpy's OpenBLAS thread count (process-wide); False if it cannot be found.

    Decoding multiplies small matrices: on a busy machine the extra BLAS threads mostly wait for
    each other, and one thread is several times faster.
    """
    numpy_dir = Path(np.__file__).parent
    for folder in (numpy_dir.parent / "numpy.libs", numpy_dir / ".libs"):
        for library in sorted(folder.glob("lib*openblas*.so*")):
            try:
                handle = ctypes.CDLL(str(library))
            except OSError:
                continue
            for symbol in (
                "scipy_openblas_set_num_threads64_",
                "scipy_openblas_set_num_threads",
                "openblas_set_num_threads64_",
                "openblas_set_num_threads",
            ):
                setter = getattr(handle, symbol, None)
                if setter is not None:
                    setter(ctypes.c_int(threads))
                    return True
    return False


@dataclass(frozen=True)
class LlamaConfig:
    n_layers: int
    dim: int
    n_heads: int
    n_kv_heads: int
    rope_base: float
    norm_eps: float
    context_length: int
    vocab_size: int

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads


@dataclass(frozen=True)
class Layer:
    attn_norm: F32
    wqkv: Matrix  # (q + k + v outputs, dim)
    wo: Matrix
    ffn_norm: F32
    w_gate_up: Matrix  # (2 * hidden, dim)
    w_down: Matrix


@dataclass(frozen=True)
class GgufModel:
    config: LlamaConfig
    embedding: Matrix  # (vocab, dim), also the output projection when tied
    output_norm: F32
    output: Matrix | None
    layers: list[Layer]
    tokens: list[str]
    token_types: list[int]
    merges: list[str]
    name: str


def _raw_size(info: TensorInfo) -> int:
    count = int(np.prod(info.dims))
    if info.ggml_type == F32_TYPE:
        return 4 * count
    if info.ggml_type == F16_TYPE:
        return 2 * count
    if info.ggml_type == Q4_1_TYPE:
        return count // BLOCK * (4 + BLOCK // 2)
    if info.ggml_type == Q8_0_TYPE:
        return count // BLOCK * (2 + BLOCK)
    block, size = _gguf_package(info).GGML_QUANT_SIZES[info.ggml_type]
    return int(count // block * size)


def _gguf_package(info: TensorInfo) -> Any:
    try:
        import gguf
    except ImportError as exc:  # pragma: no cover - depends on the file and environment
        raise EmbeddedModelUnavailable(
            f"tensor {info.name} has ggml type {info.ggml_type}; reading it needs: pip install gguf"
        ) from exc
    return gguf


def _float32(info: TensorInfo, raw: npt.NDArray[np.uint8]) -> F32:
    if info.ggml_type == F32_TYPE:
        values: F32 = raw.view(np.float32).reshape(info.shape)
        return values
    if info.ggml_type == F16_TYPE:
        return raw.view(np.float16).reshape(info.shape).astype(np.float32)
    gguf = _gguf_package(info)
    rows = info.shape[0] if len(info.shape) > 1 else 1
    dequantised = gguf.quants.dequantize(
        raw.reshape(rows, -1), gguf.GGMLQuantizationType(info.ggml_type)
    )
    return np.ascontiguousarray(dequantised, dtype=np.float32).reshape(info.shape)


def _matrix(file: GgufFile, infos: list[TensorInfo]) -> Matrix:
    """The tensors stacked row-wise as one matrix (the q/k/v and gate/up projections run as one
    product). Quantised tensors of one type are stacked as raw bytes and converted once."""
    kinds = {info.ggml_type for info in infos}
    widths = {info.shape[1] for info in infos}
    if len(kinds) == 1 and len(widths) == 1 and kinds <= {Q4_1_TYPE, Q8_0_TYPE}:
        parts = [file.read(info, _raw_size(info)) for info in infos]
        raw = parts[0] if len(parts) == 1 else np.concatenate(parts)
        del parts
        rows = sum(info.shape[0] for info in infos)
        convert = _q4_1 if Q4_1_TYPE in kinds else _q8_0
        return convert(raw.reshape(rows, -1))
    dense = [_float32(info, file.read(info, _raw_size(info))) for info in infos]
    return DenseMatrix(dense[0] if len(dense) == 1 else np.concatenate(dense))


def read_gguf(path: Path) -> GgufModel:
    """The model in ``path`` (a llama-architecture GGUF), its matrices still quantised."""
    file = GgufFile(path)

    def field(key: str) -> Any:
        if key not in file.fields:
            raise GgufFormatError(f"{path.name}: GGUF field {key} is missing")
        return file.fields[key]

    arch = field("general.architecture")
    if arch != "llama":
        raise GgufFormatError(
            f"{path.name}: only llama-architecture GGUF files run here, not {arch}"
        )
    vectors = {
        info.name: _float32(info, file.read(info, _raw_size(info)))
        for info in file.tensors
        if len(info.dims) == 1
    }
    tables = {info.name: info for info in file.tensors if len(info.dims) > 1}

    def matrix(*names: str) -> Matrix:
        return _matrix(file, [tables[name] for name in names])

    embedding = matrix("token_embd.weight")
    config = LlamaConfig(
        n_layers=int(field("llama.block_count")),
        dim=int(field("llama.embedding_length")),
        n_heads=int(field("llama.attention.head_count")),
        n_kv_heads=int(field("llama.attention.head_count_kv")),
        rope_base=float(field("llama.rope.freq_base")),
        norm_eps=float(field("llama.attention.layer_norm_rms_epsilon")),
        context_length=int(field("llama.context_length")),
        vocab_size=embedding.shape[0],
    )
    layers = [_layer(f"blk.{i}.", vectors, matrix) for i in range(config.n_layers)]
    return GgufModel(
        config=config,
        embedding=embedding,
        output_norm=vectors["output_norm.weight"],
        output=matrix("output.weight") if "output.weight" in tables else None,
        layers=layers,
        tokens=[str(t) for t in field("tokenizer.ggml.tokens")],
        token_types=[int(t) for t in field("tokenizer.ggml.token_type")],
        merges=[str(m) for m in field("tokenizer.ggml.merges")],
        name=str(file.fields.get("general.name") or path.stem),
    )


def _layer(p: str, vectors: dict[str, F32], matrix: Callable[..., Matrix]) -> Layer:
    return Layer(
        attn_norm=vectors[p + "attn_norm.weight"],
        wqkv=matrix(*(p + f"attn_{x}.weight" for x in "qkv")),
        wo=matrix(p + "attn_output.weight"),
        ffn_norm=vectors[p + "ffn_norm.weight"],
        w_gate_up=matrix(p + "ffn_gate.weight", p + "ffn_up.weight"),
        w_down=matrix(p + "ffn_down.weight"),
    )


def dense_copy(model: GgufModel) -> GgufModel:
    """The same model with every matrix dequantised to float32 (the reference for tests)."""

    def dense(m: Matrix) -> Matrix:
        return DenseMatrix(m.dense())

    return GgufModel(
        config=model.config,
        embedding=dense(model.embedding),
        output_norm=model.output_norm,
        output=None if model.output is None else dense(model.output),
        layers=[
            Layer(
                attn_norm=layer.attn_norm,
                wqkv=dense(layer.wqkv),
                wo=dense(layer.wo),
                ffn_norm=layer.ffn_norm,
                w_gate_up=dense(layer.w_gate_up),
                w_down=dense(layer.w_down),
            )
            for layer in model.layers
        ],
        tokens=model.tokens,
        token_types=model.token_types,
        merges=model.merges,
        name=model.name,
    )
