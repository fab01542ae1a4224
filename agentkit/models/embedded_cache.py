"""The embedded model's on-disk cache: converted weights and the KV cache of prompt prefixes.

A process that starts the embedded model pays for work whose result never changes between
runs: converting the GGUF's quantised blocks into the block-major layout the kernels read
(:mod:`agentkit.models.embedded_weights`), and running the same system prompt (instructions and
tool list) through the network. Both are kept here, in ``$AGENTKIT_CACHE_DIR``, else
``$XDG_CACHE_HOME/agentkit``, else ``~/.cache/agentkit``, under ``embedded/<key>/``: the key is a
hash of the weights file (its resolved path, size, modification time and first megabyte), of
numpy's version and of the source of the code that produces or reads the cached arrays (this
module, :mod:`~agentkit.models.embedded`, :mod:`~agentkit.models.embedded_weights` and
:mod:`~agentkit.models.gguf_file`), so an edited kernel or a replaced file never meets arrays
another version wrote.

- ``weights.bin`` + ``weights.json``: every array of the converted model side by side (64-byte
  aligned), and an index of names, dtypes, shapes, offsets and a checksum; a start maps the file
  read-only instead of converting. The bytes are the converted arrays themselves, so the model is
  the same. About 165 MB for SmolLM2-135M (plus 1.7 MB of index).
- ``prefix-<hash>.npz``: the token ids of a prefix and its keys and values, as the network
  computed them; restoring them gives the same cache as running the prefix. The hash covers the
  ids and the variant (a quantised model and its dense copy compute slightly different keys and
  values, so each has its own files). About 46 KB per token (5 MB for the demo's 108-token system
  message); the newest ``MAX_PREFIXES`` (16) per key are kept.

At most ``MAX_MODELS`` (3) key folders are kept, the oldest beyond are removed when a new one is
written: with the demo's prompts about 3 x (167 + 16 x 5) MB at worst, usually one folder of
about 170 MB. ``AGENTKIT_EMBEDDED_CACHE=0`` (or ``EmbeddedModel(cache=False)``) turns the cache
off: nothing is read or written. Removing the ``embedded`` folder clears it (a later start
converts again).

Everything read is checked (key, dtypes, shapes, sizes, ids); whatever does not match is ignored
with a warning on the ``agentkit.models.embedded_cache`` logger and rebuilt; a damaged prefix
file (a failed CRC, a cut zip) counts as a miss. ``weights.bin``'s checksum is *sampled*: blake2b
over its size and ``SAMPLES`` (64) pieces of 64 KB at evenly spaced offsets, 4 MB of 165 (5 ms
at start; hashing the whole file took 170 ms, more than mapping it). It catches a cut or grown
file, a weights.bin that is not the one its index was written with, and damage inside a sampled
piece; it does not catch a flipped bit elsewhere (about 97% of the bytes), which would change
logits silently. Writes go to a temporary name first and are renamed into place, so a reader
never sees half a file; a cache that cannot be written (a read-only home) costs a warning, never
the run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import mmap
import os
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import numpy as np
    import numpy.typing as npt
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError("the embedded model needs numpy: pip install 'agentkit[embedded]'") from exc

from .embedded_weights import BlockMatrix, DenseMatrix, GgufModel, Layer, LlamaConfig, Matrix

F32 = npt.NDArray[np.float32]
CACHE_ENV = "AGENTKIT_CACHE_DIR"
SWITCH_ENV = "AGENTKIT_EMBEDDED_CACHE"  # 0 / false / off / no: no cache
FORMAT = 2  # bump when the files' layout changes
ALIGN = 64
MAX_PREFIXES = 16  # prefix files kept per key (the oldest beyond are removed)
SAMPLES = 64  # pieces of weights.bin hashed by the check (see sampled_digest)
SAMPLE_BYTES = 1 << 16
_KERNEL_SOURCES = ("embedded.py", "embedded_weights.py", "embedded_cache.py", "gguf_file.py")
# what np.load raises on a damaged .npz (a flipped byte: a CRC error; a cut file: not a zip, EOF)
_UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)

log = logging.getLogger(__name__)


def enabled() -> bool:
    """False when ``$AGENTKIT_EMBEDDED_CACHE`` turns the cache off (0, false, off, no)."""
    return os.environ.get(SWITCH_ENV, "").strip().lower() not in {"0", "false", "off", "no"}


def cache_root() -> Path:
    """Where the cache lives (not created here)."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "agentkit"


def cache_key(weights: Path) -> str:
    """A hash of the weights file and of the kernels' source (see the module docstring)."""
    digest = hashlib.sha256(f"format {FORMAT}\nnumpy {np.__version__}\n".encode())
    real = weights.resolve()
    stat = real.stat()
    digest.update(f"{real}\n{stat.st_size}\n{stat.st_mtime_ns}\n".encode())
    with real.open("rb") as stream:
        digest.update(stream.read(1 << 20))
    here = Path(__file__).parent
    for name in _KERNEL_SOURCES:
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:32]


# -- the converted weights ---------------------------------------------------------------------


def _matrix_arrays(m: Matrix) -> dict[str, npt.NDArray[Any]]:
    if isinstance(m, BlockMatrix):
        arrays: dict[str, npt.NDArray[Any]] = {"q": m.q, "scale": m.scale}
        if m.offset is not None:
            arrays["offset"] = m.offset
        return arrays
    if isinstance(m, DenseMatrix):
        return {"w": m.w}
    raise TypeError(f"cannot cache a matrix of type {type(m).__name__}")


def _model_arrays(model: GgufModel) -> Iterator[tuple[str, npt.NDArray[Any]]]:
    def matrix(prefix: str, m: Matrix) -> Iterator[tuple[str, npt.NDArray[Any]]]:
        for name, array in _matrix_arrays(m).items():
            yield f"{prefix}.{name}", array

    yield from matrix("embedding", model.embedding)
    yield "output_norm", model.output_norm
    if model.output is not None:
        yield from matrix("output", model.output)
    for i, layer in enumerate(model.layers):
        p = f"blk.{i}"
        yield f"{p}.attn_norm", layer.attn_norm
        yield f"{p}.ffn_norm", layer.ffn_norm
        for name in ("wqkv", "wo", "w_gate_up", "w_down"):
            yield from matrix(f"{p}.{name}", getattr(layer, name))


MAX_MODELS = 3  # key folders kept side by side (a replaced file or kernel leaves its old one)


def weights_folder(key: str) -> Path:
    return cache_root() / "embedded" / key


def save_weights(folder: Path, key: str, model: GgufModel) -> None:
    """Write the converted model into ``folder`` (replacing what was there); of the folders
    beside it, only the newest ``MAX_MODELS`` stay."""
    index: dict[str, dict[str, Any]] = {}
    folder.mkdir(parents=True, exist_ok=True)
    _prune(folder.parent, keep=folder)
    replacing = _replacing(folder / "weights.bin")
    with replacing as stream:
        offset = 0
        for name, array in _model_arrays(model):
            pad = -offset % ALIGN
            stream.write(b"\0" * pad)
            offset += pad
            data = np.ascontiguousarray(array)
            index[name] = {"dtype": data.dtype.str, "shape": list(data.shape), "offset": offset}
            stream.write(data.reshape(-1).data.cast("B"))
            offset += data.nbytes
        stream.flush()
        with replacing.temp.open("rb") as written:  # the bytes as the file holds them
            check = _file_digest(written, offset)
    meta = {
        "key": key,
        "format": FORMAT,
        "size": offset,
        "check": check,
        "arrays": index,
        "config": model.config.__dict__,
        "name": model.name,
        "tokens": model.tokens,
        "token_types": model.token_types,
        "merges": model.merges,
    }
    with _replacing(folder / "weights.json") as stream:
        stream.write(json.dumps(meta).encode())


def sample_offsets(size: int) -> list[int]:
    """Where the ``SAMPLES`` pieces of ``SAMPLE_BYTES`` that the check hashes start: evenly
    spaced, the first at 0, the last ending at ``size`` (one piece, the whole file, if small)."""
    if size <= SAMPLES * SAMPLE_BYTES:
        return [0]
    span = size - SAMPLE_BYTES
    return [span * i // (SAMPLES - 1) for i in range(SAMPLES)]


def sampled_digest(buffer: Any, size: int) -> str:
    """blake2b over ``size`` and the sampled pieces of ``buffer`` (bytes, mmap or memoryview)."""
    digest = hashlib.blake2b(f"{size}\n".encode(), digest_size=16)
    whole = size <= SAMPLES * SAMPLE_BYTES
    for start in sample_offsets(size):
        digest.update(buffer[start : size if whole else start + SAMPLE_BYTES])
    return digest.hexdigest()


def _file_digest(stream: Any, size: int) -> str:
    if size == 0:
        return sampled_digest(b"", 0)
    with mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as buffer:
        return sampled_digest(buffer, size)


def _prune(parent: Path, keep: Path) -> None:
    """Remove the oldest key folders beyond ``MAX_MODELS``. Another process may be writing or
    removing one at the same time: a folder that cannot be removed is left for a later prune."""
    folders = []
    for f in parent.iterdir():
        try:
            if f.is_dir() and f != keep:
                folders.append((f.stat().st_mtime_ns, f))
        except OSError:  # gone meanwhile
            continue
    folders.sort(reverse=True)
    for _, old in folders[MAX_MODELS - 1 :]:
        try:
            for item in old.iterdir():
                item.unlink(missing_ok=True)
            old.rmdir()
        except OSError as exc:
            log.info("embedded cache: %s not removed (%s)", old, exc)


class CacheMismatch(ValueError):
    """A cached file does not match what this process expects."""


def load_weights(folder: Path, key: str) -> GgufModel | None:
    """The model from ``folder``, its arrays mapped read-only; None when there is none or it
    does not match (with a warning)."""
    try:
        meta = json.loads((folder / "weights.json").read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("embedded cache: %s unreadable (%s); converting the weights", folder, exc)
        return None
    try:
        return _mapped_model(folder, key, meta)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("embedded cache: %s ignored (%s); converting the weights", folder, exc)
        return None


def _mapped_model(folder: Path, key: str, meta: dict[str, Any]) -> GgufModel:
    if meta.get("key") != key or meta.get("format") != FORMAT:
        raise CacheMismatch("it was written for other weights or another kernel version")
    path = folder / "weights.bin"
    size = path.stat().st_size
    if size != meta["size"]:
        raise CacheMismatch(f"weights.bin holds {size} bytes, the index says {meta['size']}")
    with path.open("rb") as stream:
        buffer = mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
    if isinstance(buffer, mmap.mmap) and hasattr(mmap, "MADV_WILLNEED"):
        buffer.madvise(mmap.MADV_WILLNEED)
    if sampled_digest(buffer, size) != meta["check"]:
        raise CacheMismatch("weights.bin does not match its checksum (sampled)")
    arrays: dict[str, npt.NDArray[Any]] = {}
    for name, entry in meta["arrays"].items():
        dtype = np.dtype(entry["dtype"])
        shape = tuple(int(n) for n in entry["shape"])
        offset = int(entry["offset"])
        if offset < 0 or offset + dtype.itemsize * int(np.prod(shape)) > size:
            raise CacheMismatch(f"array {name} lies outside weights.bin")
        arrays[name] = np.ndarray(shape, dtype=dtype, buffer=buffer, offset=offset)
    return _model_from(arrays, meta)


def _matrix_from(arrays: dict[str, npt.NDArray[Any]], prefix: str) -> Matrix:
    if f"{prefix}.w" in arrays:
        return DenseMatrix(arrays[f"{prefix}.w"])
    q, scale = arrays[f"{prefix}.q"], arrays[f"{prefix}.scale"]
    offset = arrays.get(f"{prefix}.offset")
    if (
        q.ndim != 3
        or scale.shape != q.shape[:2]
        or (offset is not None and offset.shape != scale.shape)
    ):
        raise CacheMismatch(f"matrix {prefix} has inconsistent shapes")
    return BlockMatrix(q=q, scale=scale, offset=offset)


def _model_from(arrays: dict[str, npt.NDArray[Any]], meta: dict[str, Any]) -> GgufModel:
    config = LlamaConfig(**meta["config"])
    layers = [
        Layer(
            attn_norm=arrays[f"blk.{i}.attn_norm"],
            wqkv=_matrix_from(arrays, f"blk.{i}.wqkv"),
            wo=_matrix_from(arrays, f"blk.{i}.wo"),
            ffn_norm=arrays[f"blk.{i}.ffn_norm"],
            w_gate_up=_matrix_from(arrays, f"blk.{i}.w_gate_up"),
            w_down=_matrix_from(arrays, f"blk.{i}.w_down"),
        )
        for i in range(config.n_layers)
    ]
    has_output = any(name.startswith("output.") for name in arrays)
    return GgufModel(
        config=config,
        embedding=_matrix_from(arrays, "embedding"),
        output_norm=arrays["output_norm"],
        output=_matrix_from(arrays, "output") if has_output else None,
        layers=layers,
        tokens=[str(t) for t in meta["tokens"]],
        token_types=[int(t) for t in meta["token_types"]],
        merges=[str(m) for m in meta["merges"]],
        name=str(meta["name"]),
    )


# -- the KV cache of prompt prefixes -----------------------------------------------------------


@dataclass(frozen=True)
class PrefixKV:
    ids: list[int]
    keys: F32  # (layers, kv heads, len(ids), head dim)
    values: F32


def _prefix_path(folder: Path, ids: Sequence[int], variant: str) -> Path:
    digest = hashlib.sha256(f"{variant}\n".encode())
    digest.update(np.asarray(ids, dtype=np.int64).tobytes())
    return folder / f"prefix-{digest.hexdigest()[:24]}.npz"


def load_prefix(
    folder: Path, ids: Sequence[int], shape: tuple[int, int, int], variant: str
) -> PrefixKV | None:
    """The keys and values of exactly ``ids``, if cached; ``shape`` is (layers, kv heads, head
    dim) of the network that will use them, ``variant`` names how it computes (``quantised``
    or ``dense``: their keys and values may differ in rounding, so each has its own files)."""
    path = _prefix_path(folder, ids, variant)
    try:
        with np.load(path, allow_pickle=False) as data:
            stored_ids, keys, values = data["ids"], data["keys"], data["values"]
    except FileNotFoundError:
        return None
    except _UNREADABLE as exc:
        log.warning("embedded cache: %s unreadable (%s); running the prefix", path, exc)
        return None
    layers, heads, head_dim = shape
    expected = (layers, heads, len(ids), head_dim)
    if stored_ids.tolist() != list(ids):
        problem = "its token ids differ"
    elif keys.dtype != np.float32 or values.dtype != np.float32:
        problem = f"its dtype is {keys.dtype}/{values.dtype}, not float32"
    elif keys.shape != expected or values.shape != expected:
        problem = f"its shape is {keys.shape}, not {expected}"
    else:
        return PrefixKV(ids=list(ids), keys=keys, values=values)
    log.warning("embedded cache: %s ignored (%s); running the prefix", path, problem)
    return None


def save_prefix(folder: Path, prefix: PrefixKV, variant: str) -> None:
    """Store ``prefix`` for ``variant`` (and keep only the newest ``MAX_PREFIXES`` files)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = _prefix_path(folder, prefix.ids, variant)
    with _replacing(path) as stream:
        np.savez(
            stream,
            ids=np.asarray(prefix.ids, dtype=np.int64),
            keys=np.ascontiguousarray(prefix.keys),
            values=np.ascontiguousarray(prefix.values),
        )
    held = sorted(folder.glob("prefix-*.npz"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
    for old in held[MAX_PREFIXES:]:
        old.unlink(missing_ok=True)


class _replacing:
    """``with _replacing(path) as stream``: write a temporary file, rename it to ``path`` when
    the block ends without an exception (a reader sees the old file or the whole new one)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> Any:
        handle, name = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        self.temp = Path(name)
        self.stream = os.fdopen(handle, "wb")
        return self.stream

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        self.stream.close()
        if kind is None:
            os.replace(self.temp, self.path)
        else:
            self.temp.unlink(missing_ok=True)
