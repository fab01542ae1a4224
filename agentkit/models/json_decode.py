"""Server replies decoded to exactly what the standard library's ``json.loads`` gives, by orjson
(about 3x faster on a chat reply) whenever that is the same.

orjson 3.8 differs from the standard library in what it reads, never in how: an integer beyond
64 bits comes back as a float, and ``NaN``/``Infinity``, a number too large for a float
(``1e400``: ``inf`` in the standard library), a lone surrogate (escaped or not), a UTF-8 BOM or
a UTF-16/32 text are refused. So orjson is asked only when the text holds no run of 19 or more
ASCII digits (every integer of at most 18 digits fits in 64 bits; the run counts digits in
strings too, which only sends more texts to the standard library), and whatever it refuses is
decoded again by the standard library, which returns its value or raises its own error. The
standard library also fails on deep nesting (``RecursionError`` at about 1,000 levels, less the
caller's stack depth) where orjson does not: orjson's value is kept only when it nests at
most :data:`MAX_ORJSON_DEPTH` levels, known at once when the text has no more ``[`` and ``{``
than that, else counted on the text (:func:`nests_within`) (a ``/generate`` reply with log-probs
has thousands of brackets but nests four levels); a deeper text goes to the standard library.
Equal to ``json.loads`` on generated JSON (tests/models/test_json_codec.py, hypothesis).
"""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - the optional ``fast`` extra is not installed
    orjson = None  # type: ignore[assignment]

__all__ = ["MAX_ORJSON_DEPTH", "loads", "nests_within"]

# Each ASCII digit as "0", each "[" and "{" as "[", every other byte as " ": one pass finds a
# long run of digits and counts what could open a level.
_SCAN = bytes(
    0x30 if 0x30 <= byte <= 0x39 else 0x5B if byte in (0x5B, 0x7B) else 0x20 for byte in range(256)
)
_LONG_RUN = b"0" * 19
MAX_ORJSON_DEPTH = 400


def loads(raw: bytes | str) -> Any:
    """``json.loads(raw)``: the same value (types, key order, duplicate keys last) or the same
    exception."""
    if orjson is not None:
        data = raw if type(raw) is bytes else _utf8(raw)
        if data is not None:
            scanned = data.translate(_SCAN)
            if _LONG_RUN not in scanned:
                try:
                    value = orjson.loads(data)
                except ValueError:  # orjson.JSONDecodeError: the standard library decides
                    pass
                else:
                    if (
                        len(data) < 2 * MAX_ORJSON_DEPTH
                        or scanned.count(b"[") <= MAX_ORJSON_DEPTH
                        or nests_within(data, MAX_ORJSON_DEPTH)
                    ):
                        return value
    return json.loads(raw)


# Of the bytes of JSON text only the quotes and brackets, each bracket as ``[`` or ``]``
_SKELETON = bytes(
    0x5B if byte in (0x5B, 0x7B) else 0x5D if byte in (0x5D, 0x7D) else byte for byte in range(256)
)
_NOT_SKELETON = bytes(byte for byte in range(256) if byte not in b'"[]{}')


def nests_within(data: bytes, levels: int) -> bool:
    """Whether the valid JSON text ``data`` nests at most ``levels`` arrays and objects deep,
    in a few passes in C: the escaped backslashes and quotes dropped (a run of backslashes
    pairs up from its start, as a decoder reads it), so every quote left opens or closes a
    string; of the rest only quotes and brackets; the strings dropped; then each pass drops
    every innermost ``[]``, one level of nesting."""
    plain = data.replace(b"\\\\", b"").replace(b'\\"', b"") if b"\\" in data else data
    skeleton = b"".join(plain.translate(_SKELETON, _NOT_SKELETON).split(b'"')[::2])
    for _ in range(levels):
        if not skeleton:
            return True
        skeleton = skeleton.replace(b"[]", b"")
    return not skeleton


def _utf8(raw: bytes | str) -> bytes | None:
    """The bytes orjson is given for ``raw``: a text's UTF-8 (a lone surrogate kept as its
    bytes, which orjson refuses); ``None`` for anything else (``bytearray``, ``memoryview``)."""
    if type(raw) is str:
        return raw.encode("utf-8", "surrogatepass")
    return None
