"""A bound for goal 2, not a figure of agentkit: token mode with the client work a compiled
tokenizer or parser could take over made almost free.

``install()`` memoises, in this process only, the three steps of token mode that are text
processing: parsing a completion (``glm45.parse_plain``), splitting and encoding a tool result or
a user turn (``SegmentCache.encode``) and decoding output ids
(``HFTokenizersTokenizer.decode``). Each memo returns a fresh copy of what it kept (the lists
and argument dicts the real functions give are the caller's own). The benchmark's server
repeats its completions and a run with the same counters repeats its tool results, so after a
priming run every call is a dict lookup: what is left of token mode's cost is everything else
it does per step (the larger request and reply, the log-probs, the token records, the
segments). If that alone is over the goal's ratio, no faster tokenizer or parser reaches it.

Used by ``worker.py --mode tokens-bound``; never imported by agentkit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

# calls each memo could not answer from what it kept, by step: after the priming run a bound
# with misses left is not the bound it claims to be (worker.py reports them)
MISSES: Counter[str] = Counter()


def install() -> None:
    """Replace the three functions by memoised ones (in this process, for good)."""
    from agentkit.dialects import glm45
    from agentkit.tokenizer import HFTokenizersTokenizer, SegmentCache

    parse_plain = glm45.parse_plain
    parsed: dict[tuple[str, bool], Any] = {}

    def memo_parse(text: str, tools: Any = None, *, thinking: bool = True) -> Any:
        key = (text, thinking)
        found = parsed.get(key)
        if found is None:
            MISSES["parse"] += 1
            found = parsed[key] = parse_plain(text, tools, thinking=thinking)
        reasoning, content, calls, problems, stop = found
        own = [(name, dict(arguments), raw) for name, arguments, raw in calls]
        return reasoning, content, own, list(problems), stop

    encode = SegmentCache.encode
    encoded: dict[tuple[str, bool], list[int]] = {}

    def memo_encode(self: SegmentCache, text: str, *, keep: bool = True) -> list[int]:
        key = (text, keep)
        found = encoded.get(key)
        if found is None:
            MISSES["encode"] += 1
            found = encoded[key] = encode(self, text, keep=keep)
        return list(found)

    decode = HFTokenizersTokenizer.decode
    decoded: dict[tuple[tuple[int, ...], bool], str] = {}

    def memo_decode(
        self: HFTokenizersTokenizer, ids: Sequence[int], *, skip_special_tokens: bool = False
    ) -> str:
        key = (tuple(ids), skip_special_tokens)
        found = decoded.get(key)
        if found is None:
            MISSES["decode"] += 1
            found = decoded[key] = decode(self, ids, skip_special_tokens=skip_special_tokens)
        return found

    glm45.parse_plain = memo_parse  # type: ignore[assignment]
    SegmentCache.encode = memo_encode  # type: ignore[method-assign]
    HFTokenizersTokenizer.decode = memo_decode  # type: ignore[method-assign]
