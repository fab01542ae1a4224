"""A JSON string argument that must be a whole arithmetic expression.

A tool declares it in its parameter schema with ``"format": "arithmetic-expression"`` (the demo's
``calculator`` does). The model then writes the string token by token, and each token is allowed
only if the text stays a prefix of an expression in this grammar::

    expression := operand (" "? operator " "? operand)*
    operand    := "-"? number | "(" expression ")"
    number     := digits ("." digits)?          operator := "+" | "-" | "*" | "/"

The closing quote is allowed only where the expression is complete: parentheses balanced, at
least one operator, and not wholly wrapped in one pair of parentheses (``(17 + 25)`` must go on,
so a model cannot stop at the first closing parenthesis of ``(17 + 25) * 3``). The grammar
decides what is well formed, never which numbers or operators: those are the model's choice.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

try:
    import numpy as np
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError("constrained decoding needs numpy: pip install 'agentkit[embedded]'") from exc

from .grammar_base import Step, Vocabulary

FORMAT = "arithmetic-expression"
_CHARS = frozenset(b"0123456789.+-*/() ")
_OPERATORS = frozenset(b"+-*/")
MAX_NUMBER_DIGITS = 15


@dataclass(frozen=True)
class ExpressionState:
    """Where a prefix of an expression stands."""

    depth: int = 0
    # "start" / "open" / "operator": an operand is due; "number" / "close": an operand just ended
    last: str = "start"
    digits: int = 0  # digits of the current number
    leading_zero: bool = False  # the current number starts with 0
    dot: bool = False  # the current number has a decimal point
    dangling_dot: bool = False  # ... and ends with it
    unary: bool = False  # a unary minus waits for its number
    space: bool = False  # the last character was a space
    operators: int = 0
    wrapped: bool = False  # started with "(" and nothing follows its matching ")" yet
    first_group_open: bool = False  # started with "(" whose match has not come yet

    def feed(self, char: int) -> ExpressionState | None:
        """The state after ``char``, or None if the text would leave the grammar."""
        operand_due = self.last in ("start", "open", "operator")
        if char == 0x20:  # space: between items, never twice, never first
            if self.space or self.last == "start" or self.unary or self.dangling_dot:
                return None
            return replace(self, space=True)
        # anything after the first group unwraps it
        state = replace(self, wrapped=False) if self.wrapped else self
        if chr(char).isdigit():
            if operand_due:
                return replace(
                    state,
                    last="number",
                    digits=1,
                    dot=False,
                    unary=False,
                    space=False,
                    leading_zero=char == ord("0"),
                )
            if self.last == "number" and not self.space and self.digits < MAX_NUMBER_DIGITS:
                if self.leading_zero and not self.dot:
                    return None  # no leading zeros ("012" is not a number in Python or JSON)
                return replace(state, digits=self.digits + 1, dangling_dot=False)
            return None
        if char == ord("."):
            if self.last == "number" and not self.space and not self.dot:
                return replace(state, dot=True, dangling_dot=True)
            return None
        if char in _OPERATORS:
            if self.last in ("number", "close") and not self.dangling_dot:
                return replace(state, last="operator", operators=self.operators + 1, space=False)
            if char == ord("-") and self.last in ("start", "open") and not self.unary:
                return replace(state, unary=True, space=False)
            return None
        if char == ord("("):
            if operand_due and not self.unary:
                return replace(
                    state,
                    last="open",
                    depth=self.depth + 1,
                    space=False,
                    first_group_open=self.last == "start" or self.first_group_open,
                )
            return None
        if char == ord(")"):
            if self.depth > 0 and self.last in ("number", "close") and not self.dangling_dot:
                closes_first = self.first_group_open and self.depth == 1
                return replace(
                    state,
                    last="close",
                    depth=self.depth - 1,
                    space=False,
                    wrapped=closes_first,
                    first_group_open=self.first_group_open and not closes_first,
                )
            return None
        return None

    @property
    def complete(self) -> bool:
        return (
            self.depth == 0
            and self.last in ("number", "close")
            and not self.dangling_dot
            and not self.space
            and self.operators > 0
            and not self.wrapped
        )


def finishing_token(vocab: Vocabulary, state: ExpressionState) -> int | None:
    """The one token that brings ``state`` closest to complete (None when it is complete):
    used once an expression has run past its token budget, so decoding always ends."""
    if state.complete:
        return None
    if state.dangling_dot or state.unary or state.last in ("start", "open", "operator"):
        return vocab.bytes_to_id[b"1"]
    if state.space:
        return vocab.bytes_to_id[b"1"] if state.last == "operator" else vocab.bytes_to_id[b"+"]
    if state.depth > 0:
        return vocab.bytes_to_id[b")"]
    return vocab.bytes_to_id[b"+"]  # no operator yet, or wholly wrapped: add "+ 1"


def _simulate(state: ExpressionState, raw: bytes) -> ExpressionState | None:
    current: ExpressionState | None = state
    for char in raw:
        if current is None:
            return None
        current = current.feed(char)
    return current


def _body(raw: bytes) -> bool:
    return set(raw) <= _CHARS


@dataclass
class ArithmeticString:
    """The JSON string ``"<expression>"`` after ``"key":`` (the space comes with the string).

    The model writes the expression within the grammar above. Tokens are allowed across the
    string's edges as the tokenizer would write them (`` "(`` opening, ``)"`` closing), so the
    model is never pushed off its usual tokenization; the closing quote is forced once
    ``max_tokens`` are spent and the expression is complete."""

    writes_space = True
    max_tokens: int = 48
    state: ExpressionState = ExpressionState()
    _opened: bool = False
    _closed: bool = False
    _count: int = 0

    def _opening(self, vocab: Vocabulary) -> Step:
        candidates = vocab.cached_ids(
            "arithmetic_open", lambda raw: raw.startswith(b' "') and _body(raw[2:])
        )
        allowed = [
            int(t)
            for t in candidates
            if _simulate(self.state, vocab.token_bytes[t][2:]) is not None
        ]
        return Step(allowed=np.asarray(allowed, dtype=np.int64))

    def step(self, vocab: Vocabulary) -> Step | None:
        if self._closed:
            return None
        if not self._opened:
            return self._opening(vocab)
        quote = vocab.bytes_to_id[b'"']
        if self._count >= self.max_tokens:
            finish = finishing_token(vocab, self.state)
            if finish is None:
                self._closed = True
                return Step(forced=(quote,))
            return Step(allowed=np.asarray([finish], dtype=np.int64))
        body = vocab.cached_ids("arithmetic", _body)
        closing = vocab.cached_ids(
            "arithmetic_close", lambda raw: raw.endswith(b'"') and _body(raw[:-1])
        )
        allowed = [int(t) for t in body if _simulate(self.state, vocab.token_bytes[t])]
        for token in closing:
            after = _simulate(self.state, vocab.token_bytes[token][:-1])
            if after is not None and after.complete:
                allowed.append(int(token))
        if not allowed:
            raise ValueError(f"no token continues the expression from {self.state!r}")
        return Step(allowed=np.asarray(allowed, dtype=np.int64))

    def accept(self, vocab: Vocabulary, token_id: int) -> bool:
        raw = vocab.token_bytes[token_id]
        if not self._opened:
            self._opened, raw = True, raw[2:]
        if raw.endswith(b'"'):
            self._closed, raw = True, raw[:-1]
        after = _simulate(self.state, raw)
        if after is None:
            raise ValueError(f"token {raw!r} is outside the expression grammar")
        self.state = after
        self._count += 1
        return True
