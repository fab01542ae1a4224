"""Finding the first of several markup tags in a stretch of text (both parsing paths use it)."""

from __future__ import annotations


def earliest(text: str, markers: tuple[str, ...], start: int, limit: int) -> tuple[int, str | None]:
    """The first of ``markers`` wholly in ``text[start:limit]``: its position and which one
    (``(limit, None)`` when there is none; on a tie, the one listed first)."""
    position, found = limit, None
    for marker in markers:
        # only an occurrence that starts before the best one so far can win
        bound = position + len(marker) - 1
        index = text.find(marker, start, bound if bound < limit else limit)
        if index != -1:
            position, found = index, marker
    return position, found
