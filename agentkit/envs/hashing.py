"""tau-bench's canonical database hash.

The hash is the SHA-256 of Python's ``repr`` of a nested-tuple form of the database: dict keys
sorted, list order kept, scalars as they are. Because it goes through ``repr``, ``150`` and
``150.0`` hash differently, exactly as in tau-bench, so databases must keep JSON ints and floats
apart end to end (``json.load`` does).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def to_hashable(value: Any) -> Any:
    """Nested tuples: dicts become sorted ``(key, value)`` pairs, lists and sets become tuples."""
    if isinstance(value, dict):
        return tuple((key, to_hashable(item)) for key, item in sorted(value.items()))
    if isinstance(value, list):
        return tuple(to_hashable(item) for item in value)
    if isinstance(value, set):
        return tuple(sorted(to_hashable(item) for item in value))
    return value


def consistent_hash(value: Any) -> str:
    """SHA-256 hex digest of ``str(value)``."""
    return hashlib.sha256(str(value).encode("utf-8")).hexdigest()


def hashable_repr(value: Any) -> str:
    """``str(to_hashable(value))``, written directly (about 2.5x faster on tau-bench's data)."""
    out: list[str] = []
    _write(value, out)
    return "".join(out)


def _write(value: Any, out: list[str]) -> None:
    if isinstance(value, dict):
        pairs = sorted(value.items())
        out.append("(")
        for index, (key, item) in enumerate(pairs):
            out.append("(" + repr(key) + ", " if index == 0 else ", (" + repr(key) + ", ")
            _write(item, out)
            out.append(")")
        out.append(",)" if len(pairs) == 1 else ")")
    elif isinstance(value, list):
        out.append("(")
        for index, item in enumerate(value):
            if index:
                out.append(", ")
            _write(item, out)
        out.append(",)" if len(value) == 1 else ")")
    elif isinstance(value, set):
        out.append(repr(to_hashable(value)))
    else:
        out.append(repr(value))


def db_hash(data: dict[str, Any]) -> str:
    """The hash tau-bench compares between the agent's database and the gold one."""
    return hashlib.sha256(hashable_repr(data).encode("utf-8")).hexdigest()


class HashCache:
    """Speeds up :func:`db_hash` for databases shaped ``{table: {key: record}}`` that differ
    from a known initial database in a few records.

    Each initial record's ``repr`` text is kept with its ``json.dumps`` text as a fingerprint
    (which tells ``1`` from ``1.0``); a record whose fingerprint is unchanged reuses its text.
    The result is identical to :func:`db_hash`.
    """

    def __init__(self, initial: dict[str, Any]) -> None:
        self.tables: dict[str, dict[Any, tuple[str, str]]] = {}
        for table, records in initial.items():
            if isinstance(records, dict):
                self.tables[table] = {
                    key: (fingerprint, hashable_repr(record))
                    for key, record in records.items()
                    if (fingerprint := _fingerprint(record)) is not None
                }

    def db_hash(self, data: dict[str, Any]) -> str:
        digest = hashlib.sha256()
        tables = sorted(data.items())
        digest.update(b"(")
        for index, (table, records) in enumerate(tables):
            digest.update((", (" if index else "(").encode() + repr(table).encode() + b", ")
            known = self.tables.get(table)
            if known is None or not isinstance(records, dict):
                digest.update(hashable_repr(records).encode("utf-8"))
            else:
                digest.update(self._table_text(records, known).encode("utf-8"))
            digest.update(b")")
        digest.update(b",)" if len(tables) == 1 else b")")
        return digest.hexdigest()

    @staticmethod
    def _table_text(records: dict[Any, Any], known: dict[Any, tuple[str, str]]) -> str:
        parts = []
        for key, record in sorted(records.items()):
            cached = known.get(key)
            if cached is not None and _fingerprint(record) == cached[0]:
                text = cached[1]
            else:
                text = hashable_repr(record)
            parts.append("(" + repr(key) + ", " + text + ")")
        return "(" + ", ".join(parts) + (",)" if len(parts) == 1 else ")")


def _fingerprint(record: Any) -> str | None:
    try:
        return json.dumps(record)
    except (TypeError, ValueError):
        return None
