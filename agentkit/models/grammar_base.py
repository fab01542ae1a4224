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
    def string_ids(self) -> IdArray:
        """Tokens that may appear inside a JSON string literal as they are (no escapes needed)."""
        return self.cached_ids("json_string", _json_string_safe)

    @property
    def digit_ids(self) -> IdArray:
        return self.cached_ids("digits", bytes.isdigit)


def _json_string_safe(raw: bytes) -> bool:
    return not any(b < 0x20 or b in (0x22, 0x5C, 0x7F) for b in raw)


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
