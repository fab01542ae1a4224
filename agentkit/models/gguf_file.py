"""A small reader for GGUF files (version 2 and 3): metadata, tensor table, tensor bytes, and
the tokenizer the metadata describes (:class:`GgufTokenizer`).

It reads what the embedded model needs and nothing more: the key/value metadata as Python
values (parsed from the file mapped into memory, and unmapped once read) and, per tensor, its
raw bytes read straight from the file (so nothing stays resident after a tensor has been
converted). The layout follows the GGUF specification:
a header, ``kv_count`` typed key/value pairs, ``tensor_count`` tensor descriptions, then the
tensor data, aligned to ``general.alignment`` (32 by default).
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

try:
    import numpy as np
    import numpy.typing as npt
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError("reading GGUF weights needs numpy: pip install 'agentkit[embedded]'") from exc

MAGIC = b"GGUF"

# ggml tensor types this project reads (the rest go through the ``gguf`` package, if installed)
F32_TYPE = 0
F16_TYPE = 1
Q4_1_TYPE = 3
Q8_0_TYPE = 8

_SCALARS: dict[int, str] = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9


class GgufFormatError(ValueError):
    """The file is not a GGUF file this reader understands."""


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dims: tuple[int, ...]  # ggml order: dims[0] varies fastest
    ggml_type: int
    offset: int  # from the start of the data section

    @property
    def shape(self) -> tuple[int, ...]:
        """The numpy shape (slowest dimension first), in elements."""
        return tuple(reversed(self.dims))


_U64 = struct.Struct("<Q")


class _Cursor:
    """Reads the header from a buffer (the file mapped into memory), front to back."""

    def __init__(self, buffer: bytes | mmap.mmap) -> None:
        self.buffer = buffer
        self.pos = 0

    def take(self, fmt: str) -> Any:
        try:
            value = struct.unpack_from(fmt, self.buffer, self.pos)[0]
        except struct.error as exc:
            raise GgufFormatError("the file ends inside its header") from exc
        self.pos += struct.calcsize(fmt)
        return value

    def raw(self, length: int) -> bytes:
        end = self.pos + length
        if end > len(self.buffer):
            raise GgufFormatError("the file ends inside its header")
        data = self.buffer[self.pos : end]
        self.pos = end
        return data

    def string(self) -> str:
        length = self.take("<Q")
        end = self.pos + length
        if end > len(self.buffer):
            raise GgufFormatError("the file ends inside a string")
        text = self.buffer[self.pos : end].decode("utf-8", errors="replace")
        self.pos = end
        return text

    def strings(self, count: int) -> list[str]:
        """``count`` strings in a row (the vocabulary and merges: ~100,000 of them)."""
        buffer, pos, size = self.buffer, self.pos, len(self.buffer)
        unpack, out = _U64.unpack_from, []
        for _ in range(count):
            if pos + 8 > size:
                raise GgufFormatError("the file ends inside a string")
            (length,) = unpack(buffer, pos)
            pos += 8
            if pos + length > size:
                raise GgufFormatError("the file ends inside a string")
            out.append(buffer[pos : pos + length].decode("utf-8", errors="replace"))
            pos += length
        self.pos = pos
        return out

    def value(self, kind: int) -> Any:
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            item_kind, count = self.take("<I"), self.take("<Q")
            if item_kind in _SCALARS:
                fmt = _SCALARS[item_kind]
                raw = self.raw(struct.calcsize(fmt) * count)
                return list(struct.unpack(f"<{count}{fmt[1]}", raw))
            if item_kind == _STRING:
                return self.strings(count)
            return [self.value(item_kind) for _ in range(count)]
        if kind in _SCALARS:
            return self.take(_SCALARS[kind])
        raise GgufFormatError(f"unknown metadata value type {kind}")


class GgufFile:
    """``GgufFile(path)``: ``.fields`` (metadata), ``.tensors`` (table), ``.read(tensor)``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with path.open("rb") as stream:
            if stream.read(4) != MAGIC:
                raise GgufFormatError(f"{path.name} is not a GGUF file")
            with mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                self._read_header(path, _Cursor(mapped))

    def _read_header(self, path: Path, cursor: _Cursor) -> None:
        cursor.pos = len(MAGIC)
        version = cursor.take("<I")
        if version not in (2, 3):
            raise GgufFormatError(f"{path.name}: GGUF version {version} is not supported")
        tensor_count, kv_count = cursor.take("<Q"), cursor.take("<Q")
        self.fields: dict[str, Any] = {}
        for _ in range(kv_count):
            key = cursor.string()
            self.fields[key] = cursor.value(cursor.take("<I"))
        self.tensors: list[TensorInfo] = []
        for _ in range(tensor_count):
            name = cursor.string()
            n_dims = cursor.take("<I")
            dims = tuple(cursor.take("<Q") for _ in range(n_dims))
            self.tensors.append(TensorInfo(name, dims, cursor.take("<I"), cursor.take("<Q")))
        alignment = int(self.fields.get("general.alignment", 32))
        self.data_start = -(-cursor.pos // alignment) * alignment

    def read(self, tensor: TensorInfo, nbytes: int) -> npt.NDArray[np.uint8]:
        """The tensor's ``nbytes`` raw bytes as a fresh array (the caller knows its type's size)."""
        with self.path.open("rb") as stream:
            stream.seek(self.data_start + tensor.offset)
            raw = np.fromfile(stream, dtype=np.uint8, count=nbytes)
        if raw.size != nbytes:
            raise GgufFormatError(f"{self.path.name}: tensor {tensor.name} is cut short")
        return raw


# -- the tokenizer the file describes ---------------------------------------------------------------------------------

_CONTROL = 3


@cache
def _byte_decoder() -> dict[str, int]:
    """The inverse of GPT-2's byte-to-printable-character table used by byte-level BPE."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), 256),
    ]
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return {char: b for b, char in table.items()}


@cache
def _byte_table() -> dict[int, int]:
    """``str.translate`` table from byte-level characters to the bytes they stand for; any
    other character becomes ``?`` (those above U+00FF through the ``latin-1`` "replace")."""
    table = {code: 0x3F for code in range(256)}
    table.update({ord(char): b for char, b in _byte_decoder().items()})
    return table


class GgufTokenizer:
    """The byte-level BPE tokenizer rebuilt from the GGUF's vocabulary and merges."""

    def __init__(self, tokens: list[str], token_types: list[int], merges: list[str]) -> None:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers

        vocab = {token: index for index, token in enumerate(tokens)}
        pairs = [tuple(m.split(" ", 1)) for m in merges]
        bpe = models.BPE(vocab=vocab, merges=pairs)  # type: ignore[arg-type]
        self._tk = Tokenizer(bpe)
        self._tk.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Digits(individual_digits=True),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
            ]
        )
        self._tk.decoder = decoders.ByteLevel()
        self.special_ids = [i for i, kind in enumerate(token_types) if kind == _CONTROL]
        self._tk.add_special_tokens([tokens[i] for i in self.special_ids])
        specials = set(self.special_ids)
        table = _byte_table()
        self.token_bytes = [
            token.encode() if i in specials else token.translate(table).encode("latin-1", "replace")
            for i, token in enumerate(tokens)
        ]
        self.ids = vocab

    def encode(self, text: str) -> list[int]:
        return list(self._tk.encode(text, add_special_tokens=False).ids)

    def decode(self, ids: Sequence[int]) -> str:
        return b"".join(self.token_bytes[i] for i in ids).decode("utf-8", errors="replace")
