"""Compact integer arrays for per-token engine data (MoE routing, sampling masks).

Routed experts are ``rows x layers x top-k`` small integers per call and a sampling mask is a
ragged list of kept token ids per generated token: as JSON lists they would dwarf the record.
They are kept as base64 of little-endian int32 (SGLang's own wire form for routed experts) with
their shape, and ragged data as flat ids plus offsets (slime's top-p replay form).
"""

from __future__ import annotations

import base64
import itertools
import math
import sys
from array import array
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator


def _int32(values: list[int]) -> array[int]:
    data = array("i", values)
    if data.itemsize != 4:  # pragma: no cover - every supported platform has a 4-byte int
        raise RuntimeError("array('i') is not 32-bit on this platform")
    return data


class PackedInts(BaseModel):
    """An int32 array: ``data`` is base64 of its little-endian bytes, ``shape`` its dimensions."""

    model_config = ConfigDict(frozen=True)

    dtype: Literal["int32"] = "int32"
    shape: list[int]
    data: str

    @model_validator(mode="after")
    def _check(self) -> PackedInts:
        if any(d < 0 for d in self.shape):
            raise ValueError(f"negative dimension in shape {self.shape}")
        size = len(base64.b64decode(self.data, validate=True))
        if size != 4 * math.prod(self.shape):
            raise ValueError(f"{size} bytes of int32 do not fill the shape {self.shape}")
        return self

    @classmethod
    def from_values(cls, values: list[int], shape: list[int] | None = None) -> PackedInts:
        data = _int32(values)
        if sys.byteorder != "little":  # pragma: no cover - big-endian hosts
            data.byteswap()
        encoded = base64.b64encode(data.tobytes()).decode("ascii")
        return cls(shape=shape if shape is not None else [len(values)], data=encoded)

    @classmethod
    def from_base64(cls, data: str, shape: list[int]) -> PackedInts:
        """An array from SGLang's wire form (base64 of int32); ``ValueError`` on a bad size."""
        return cls(shape=shape, data=data)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def values(self) -> list[int]:
        """The flat values, row-major."""
        data = array("i")
        data.frombytes(base64.b64decode(self.data))
        if sys.byteorder != "little":  # pragma: no cover - big-endian hosts
            data.byteswap()
        return data.tolist()

    def rows(self) -> list[list[int]]:
        """The values grouped by the first dimension (each row flattened)."""
        flat = self.values()
        if not self.shape:
            return []
        width = math.prod(self.shape[1:])
        return [flat[i * width : (i + 1) * width] for i in range(self.shape[0])]

    def nested(self) -> list[object]:
        """The values as nested lists of ``shape``."""
        flat: list[object] = list(self.values())
        for dim in reversed(self.shape[1:]):
            flat = [flat[i : i + dim] for i in range(0, len(flat), dim)]
        return flat


class RaggedInts(BaseModel):
    """A list of int lists: row ``i`` is ``ids[offsets[i]:offsets[i + 1]]``."""

    model_config = ConfigDict(frozen=True)

    ids: PackedInts
    offsets: PackedInts

    @model_validator(mode="after")
    def _check(self) -> RaggedInts:
        offsets = self.offsets.values()
        if not offsets or offsets[0] != 0 or offsets[-1] != self.ids.size:
            raise ValueError("ragged offsets must start at 0 and end at the number of ids")
        if any(b < a for a, b in itertools.pairwise(offsets)):
            raise ValueError("ragged offsets must not decrease")
        return self

    @classmethod
    def from_rows(cls, rows: list[list[int]]) -> RaggedInts:
        offsets = [0]
        for row in rows:
            offsets.append(offsets[-1] + len(row))
        return cls(
            ids=PackedInts.from_values([i for row in rows for i in row]),
            offsets=PackedInts.from_values(offsets),
        )

    @property
    def count(self) -> int:
        return self.offsets.size - 1

    def rows(self) -> list[list[int]]:
        ids, offsets = self.ids.values(), self.offsets.values()
        return [ids[a:b] for a, b in itertools.pairwise(offsets)]


class RoutedExperts(BaseModel):
    """The experts SGLang routed each position to, for one model call.

    Rows cover the absolute positions ``[start, start + rows)`` of the call's sequence
    (``input_ids + output_ids``); SGLang gives no row for the last generated token, which was
    never fed back. ``experts.shape`` is ``[rows, layers, top_k]`` when the client was told the
    model's layout, else ``[rows, layers * top_k]``.
    """

    model_config = ConfigDict(frozen=True)

    start: int
    experts: PackedInts

    @property
    def rows(self) -> int:
        return self.experts.shape[0] if self.experts.shape else 0
