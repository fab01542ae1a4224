"""What every decoding constraint is written against: the vocabulary and the decoder's step.

:mod:`agentkit.models.grammar` (tool calls), :mod:`.grammar_arithmetic` and
:mod:`.grammar_reasoned` build their constraints on these; :mod:`agentkit.models.grammar`
re-exports them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

try:
    import numpy as np
    import numpy.typing as npt
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError("constrained decoding needs numpy: pip install 'agentkit[embedded]'") from exc

IdArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class Vocabulary:
    """The bytes of every token id, an encoder for forced text, and derived id sets."""

    def __init__(
        self,
        token_bytes: Sequence[bytes],
        encode: Callable[[str], list[int]],
        *,
        special_ids: Sequence[int] = (),
    ) -> None:
        self.token_bytes = list(token_bytes)
        self.encode = encode
        self.special_ids = frozenset(special_ids)
        self.bytes_to_id: dict[bytes, int] = {}
        for index, raw in enumerate(self.token_bytes):
            if raw and index not in self.special_ids:
                self.bytes_to_id.setdefault(raw, index)
        self._id_sets: dict[str, IdArray] = {}
        self._byte_matrix: ByteMatrix | None = None

    def __len__(self) -> int:
        return len(self.token_bytes)

    def ids_where(self, keep: Callable[[bytes], bool]) -> IdArray:
        ids = [
            i
            for i, raw in enumerate(self.token_bytes)
            if raw and i not in self.special_ids and keep(raw)
        ]
        return np.asarray(ids, dtype=np.int64)

    def cached_ids(self, name: str, keep: Callable[[bytes], bool]) -> IdArray:
        """``ids_where(keep)``, computed once per ``name``."""
        if name not in self._id_sets:
            self._id_sets[name] = self.ids_where(keep)
        return self._id_sets[name]

    @property
    def byte_matrix(self) -> ByteMatrix:
        """Every token's bytes in one padded array (built on first use)."""
        if self._byte_matrix is None:
            self._byte_matrix = ByteMatrix.of(self.token_bytes, self.special_ids)
        return self._byte_matrix

    def cached_mask_ids(self, name: str, mask: Callable[[ByteMatrix], BoolArray]) -> IdArray:
        """The ids of the usable tokens (not empty, not special) ``mask`` selects, computed
        once per ``name``: a class of tokens decided with array operations over every token at
        once rather than a Python call per token."""
        if name not in self._id_sets:
            table = self.byte_matrix
            self._id_sets[name] = np.flatnonzero(mask(table) & table.usable).astype(np.int64)
        return self._id_sets[name]

    @property
    def string_ids(self) -> IdArray:
        """Tokens that may appear inside a JSON string literal as they are (no escapes needed)."""
        return self.cached_mask_ids("json_string", _json_string_safe)

    @property
    def digit_ids(self) -> IdArray:
        return self.cached_mask_ids("digits", lambda t: t.only(_DIGITS))


def byte_table(byte_set: bytes) -> BoolArray:
    """Per byte value 0-255: it is one of ``byte_set``."""
    table = np.zeros(256, dtype=bool)
    table[list(byte_set)] = True
    return table


@dataclass(frozen=True)
class ByteMatrix:
    """Every token's bytes end to end in ``data``: token ``i``'s are
    ``data[starts[i] : starts[i] + lengths[i]]``, and ``owner`` names the token of each byte.

    A class of tokens costs one pass over the vocabulary's bytes (about 330,000 for SmolLM2's
    49,152 tokens), not over a table padded to the longest token (81 bytes there).
    """

    data: npt.NDArray[np.uint8]
    starts: npt.NDArray[np.int64]
    lengths: npt.NDArray[np.int64]
    owner: npt.NDArray[np.int64]
    usable: BoolArray  # not empty and not a special token

    @staticmethod
    def of(token_bytes: Sequence[bytes], special_ids: frozenset[int]) -> ByteMatrix:
        count = len(token_bytes)
        data = np.frombuffer(b"".join(token_bytes), dtype=np.uint8)
        lengths = np.fromiter(map(len, token_bytes), dtype=np.int64, count=count)
        starts = np.zeros(count, dtype=np.int64)
        np.cumsum(lengths[:-1], out=starts[1:])
        owner = np.repeat(np.arange(count, dtype=np.int64), lengths)
        usable = lengths > 0
        usable[list(special_ids)] = False
        return ByteMatrix(data, starts, lengths, owner, usable)

    def only(self, byte_set: bytes) -> BoolArray:
        """Tokens made of ``byte_set`` bytes only (an empty token too)."""
        only = np.ones(len(self.lengths), dtype=bool)
        only[self.owner[~byte_table(byte_set)[self.data]]] = False
        return only

    def starts_with(self, byte: int) -> BoolArray:
        """Tokens whose first byte is ``byte``."""
        first = np.zeros(len(self.lengths), dtype=bool)
        held = self.lengths > 0
        first[held] = self.data[self.starts[held]] == byte
        return first

    def first_not_in(self, byte_set: bytes) -> npt.NDArray[np.int16]:
        """Per token, its first byte that is not one of ``byte_set`` (-1 when there is none)."""
        first = np.full(len(self.lengths), -1, dtype=np.int16)
        positions = np.flatnonzero(~byte_table(byte_set)[self.data])
        tokens, at = np.unique(self.owner[positions], return_index=True)
        first[tokens] = self.data[positions[at]]
        return first


_DIGITS = b"0123456789"
# what a JSON string holds unescaped: no control bytes, quote, backslash or DEL
_JSON_SAFE = bytes(b for b in range(0x20, 0x100) if b not in (0x22, 0x5C, 0x7F))


def _json_string_safe(table: ByteMatrix) -> BoolArray:
    return table.only(_JSON_SAFE)


@dataclass(frozen=True)
class Step:
    """What the decoder does next: feed ``forced`` ids, pick one of ``allowed`` ids, or stop."""

    forced: tuple[int, ...] = ()
    allowed: IdArray | None = None
    done: bool = False


class ConstraintState(Protocol):
    def next_step(self) -> Step: ...

    def accept(self, token_id: int) -> bool:
        """Record the picked token; False means "end of segment, do not emit this token"."""
        ...


class Constraint(Protocol):
    def start(self, vocab: Vocabulary) -> ConstraintState: ...
