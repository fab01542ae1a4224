"""A tool call that a small model states in words before it writes it.

Inside a call's JSON a 135M model copies badly: asked for ``(17 + 25) * 3`` it writes
``17 + 25``. In a sentence it copies well. So the constrained turn is::

    I will use the calculator tool to calculate (17 + 25) * 3.
    <tool_call>
    {"name": "calculator", "arguments": {"expression": "(17 + 25) * 3"}}
    </tool_call>

The model picks the tool by name in the sentence and writes each arithmetic argument (a string
with ``"format": "arithmetic-expression"``) after "to calculate", within the expression grammar
of :mod:`agentkit.models.grammar_arithmetic`; the call itself is then forced, the argument
copied from what the model wrote. Other arguments are written inside the JSON as usual. The
runtime never reads the user's message: every choice is the model's, the grammar only decides
what is well formed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

try:
    import numpy as np
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError("constrained decoding needs numpy: pip install 'agentkit[embedded]'") from exc

from .grammar import (
    CALL_PREFIX,
    CALL_SUFFIX,
    CallConstraint,
    Choice,
    ConstraintState,
    Literal,
    SegmentQueue,
    Step,
    Vocabulary,
    _Segment,
    _value_segments,
    required_keys,
)
from .grammar_arithmetic import _CHARS, FORMAT, ExpressionState, _simulate, finishing_token
from .grammar_base import BoolArray, ByteMatrix, byte_table

# The token classes this grammar allows, decided for the whole vocabulary at once (a token's
# "head" is its leading run of expression characters, as :func:`_split` cuts it).
_EXPRESSION = bytes(sorted(_CHARS))
_EXPRESSION_TABLE = byte_table(_EXPRESSION)


def _prose_start(table: ByteMatrix) -> BoolArray:
    """A space, then expression text only."""
    start: BoolArray = table.only(_EXPRESSION) & table.starts_with(0x20)
    return start


def _body(table: ByteMatrix) -> BoolArray:
    """Expression text only."""
    return table.only(_EXPRESSION)


def _head_has_text(table: ByteMatrix) -> BoolArray:
    """The token's head holds more than spaces: its first byte other than a space is an
    expression character (spaces are expression characters, so the head runs through it)."""
    first = table.first_not_in(b" ")
    text: BoolArray = (first >= 0) & _EXPRESSION_TABLE[np.maximum(first, 0)]
    return text


def _mixed(table: ByteMatrix) -> BoolArray:
    """An expression head, then other text (``),`` or ``5a``)."""
    mixed: BoolArray = ~_body(table) & _head_has_text(table)
    return mixed


def _plain(table: ByteMatrix) -> BoolArray:
    """Other text, after spaces at most."""
    plain: BoolArray = ~_body(table) & ~_head_has_text(table)
    return plain


def _split(raw: bytes) -> tuple[bytes, bytes]:
    """A token's leading run of expression characters and the rest."""
    cut = 0
    while cut < len(raw) and raw[cut] in _CHARS:
        cut += 1
    return raw[:cut], raw[cut:]


@dataclass
class ArithmeticText:
    """An expression written in prose: first token with its leading space, then expression
    tokens; the model ends it, once complete, with any token that is not expression text (a
    token's leading expression characters, like ``)`` of ``),``, still count). A ``.`` after a
    complete expression is the sentence's full stop unless the model follows it with a digit."""

    max_tokens: int = 48
    state: ExpressionState = field(default_factory=ExpressionState)
    text: bytes = b""
    tail: bytes = b""  # expression characters of the ending token, emitted with what follows
    period: bool = False  # the sentence already ended with "."
    _count: int = 0
    _started: bool = False
    _done: bool = False

    def step(self, vocab: Vocabulary) -> Step | None:
        if self._done:
            return None
        if not self._started:
            candidates = vocab.cached_mask_ids("arithmetic_prose_start", _prose_start)
            allowed = [t for t in candidates if _simulate(self.state, vocab.token_bytes[t][1:])]
            return Step(allowed=np.asarray(allowed, dtype=np.int64))
        if self.period:  # after "expression.": a digit makes it a decimal point, else it ended
            digits = [
                int(t)
                for t in vocab.digit_ids
                if _simulate(self.state, b"." + vocab.token_bytes[t])
            ]
            return self._allowed(vocab, digits)
        if self._count >= self.max_tokens:  # past the budget: finish the expression, then end
            finish = finishing_token(vocab, self.state)
            if finish is not None:
                return Step(allowed=np.asarray([finish], dtype=np.int64))
            return self._allowed(vocab, self._endings(vocab))
        body = vocab.cached_mask_ids("arithmetic", _body)
        allowed = [int(t) for t in body if _simulate(self.state, vocab.token_bytes[t])]
        if self.state.complete:
            allowed = [t for t in allowed if vocab.token_bytes[t] != b"."]
        allowed.extend(self._endings(vocab))
        if not allowed:
            raise ValueError(f"no token continues the expression from {self.state!r}")
        return self._allowed(vocab, allowed)

    def _endings(self, vocab: Vocabulary) -> list[int]:
        """Tokens that end the expression here (see the class docstring)."""
        out: list[int] = []
        if self.state.complete and not self.period:
            out.append(vocab.bytes_to_id[b"."])
        if not self.period:
            mixed = vocab.cached_mask_ids("prose_end_mixed", _mixed)
            for token in mixed:
                head = _split(vocab.token_bytes[token])[0].rstrip(b" ")
                after = _simulate(self.state, head) if head else None
                if after is not None and after.complete:
                    out.append(int(token))
        return out

    def _allowed(self, vocab: Vocabulary, ids: list[int]) -> Step:
        """``ids``, plus every token that is not expression text once the text is complete."""
        if not self.state.complete:
            return Step(allowed=np.asarray(ids, dtype=np.int64))
        plain = vocab.cached_mask_ids("prose_end", _plain)
        return Step(allowed=np.concatenate([np.asarray(ids, dtype=np.int64), plain]))

    def accept(self, vocab: Vocabulary, token_id: int) -> bool:
        raw = vocab.token_bytes[token_id]
        if not self._started:
            self._started, raw = True, raw[1:]
        elif self.period and set(raw) <= _CHARS:  # a digit: the "." was a decimal point
            raw = b"." + raw
            self.period = False
        elif raw == b"." and self.state.complete:
            self.period = True
            return True
        elif not set(raw) <= _CHARS:  # an ending token: keep its expression head, drop the rest
            head = b"" if self.period else _split(raw)[0].rstrip(b" ")
            self.state = _simulate(self.state, head) or self.state
            self.text, self.tail, self._done = self.text + head, head, True
            return False
        after = _simulate(self.state, raw)
        if after is None:
            raise ValueError(f"token {raw!r} is outside the expression grammar")
        self.state, self.text = after, self.text + raw
        self._count += 1
        return True


@dataclass
class LazyLiteral:
    """Forced text known only when it is reached (it copies what the model wrote before)."""

    make: Callable[[], str]
    _inner: Literal | None = None

    def step(self, vocab: Vocabulary) -> Step | None:
        if self._inner is None:
            self._inner = Literal(self.make())
        return self._inner.step(vocab)

    def accept(self, vocab: Vocabulary, token_id: int) -> bool:
        raise AssertionError("a literal accepts no sampled token")


def _copy(key_text: str, written: ArithmeticText) -> Callable[[], str]:
    """The JSON text ``"key": "<what the model wrote>"``, once it has been written."""
    return lambda: key_text + json.dumps(written.text.decode())


class ReasonedCallConstraint(CallConstraint):
    """One call to one of ``tools``, announced in a sentence (see the module docstring)."""

    def start(self, vocab: Vocabulary) -> ConstraintState:
        return _ReasonedState(self, vocab)


def _arguments(parameters: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(the required keys in schema order, those of them that are arithmetic expressions)."""
    properties = parameters.get("properties") or {}
    keys = required_keys(parameters)
    arithmetic = [
        k
        for k in keys
        if isinstance(properties[k], Mapping) and properties[k].get("format") == FORMAT
    ]
    return keys, arithmetic


class _ReasonedState(SegmentQueue):
    def __init__(self, constraint: ReasonedCallConstraint, vocab: Vocabulary) -> None:
        self.constraint = constraint
        # the names with their leading space, as the tokenizer writes a word inside a sentence
        name_choice = Choice([" " + name for name in constraint.names])
        super().__init__(vocab, [Literal("I will use the"), name_choice], name_choice)

    def expand(self) -> list[_Segment]:
        name = (self.name_choice.value or "").removeprefix(" ")
        parameters = self.constraint.parameters[name]
        properties = parameters.get("properties") or {}
        keys, arithmetic = _arguments(parameters)
        written = {key: ArithmeticText() for key in arithmetic}
        segments: list[_Segment] = []
        for position, key in enumerate(arithmetic):
            words = " tool. The expression is" if position == 0 else " and"
            segments += [Literal(words), written[key]]
        head = CALL_PREFIX + json.dumps(name)[1:] + ', "arguments": {'

        def opening() -> str:
            if not arithmetic:
                return f" tool.\n{head}"
            last = written[arithmetic[-1]]
            return f"{last.tail.decode()}{'' if last.period else '.'}\n{head}"

        segments.append(LazyLiteral(opening))
        for position, key in enumerate(keys):
            separator = ", " if position else ""
            key_text = f"{separator}{json.dumps(key, ensure_ascii=False)}: "
            if key in written:
                segments.append(LazyLiteral(_copy(key_text, written[key])))
            else:
                schema = properties[key] if isinstance(properties[key], Mapping) else {}
                segments += [Literal(key_text), *_value_segments(schema)]
        segments.append(Literal(CALL_SUFFIX))
        return segments


class FirstLine:
    """Free text up to the end of its first line (the newline is not written), so a small
    model's answer is one line. A line that starts a ``<tool_call>`` runs on to its
    ``</tool_call>`` (the model may call again) unless ``calls`` is False."""

    def __init__(self, *, calls: bool = True) -> None:
        self.calls = calls

    def start(self, vocab: Vocabulary) -> ConstraintState:
        return _FirstLineState(vocab, self.calls)


class _FirstLineState:
    def __init__(self, vocab: Vocabulary, calls: bool) -> None:
        self.vocab = vocab
        self.calls = calls
        self.text = b""
        self.done = False

    def next_step(self) -> Step:
        if self.done:
            return Step(done=True)
        return Step(allowed=None)

    def _in_call(self) -> bool:
        head = self.text.lstrip()
        opening = CALL_PREFIX.split("\n", 1)[0].encode()
        return self.calls and (head.startswith(opening) or opening.startswith(head))

    def accept(self, token_id: int) -> bool:
        raw = self.vocab.token_bytes[token_id]
        if token_id in self.vocab.special_ids or (b"\n" in raw and not self._in_call()):
            if b"\n" in raw and not self.text.strip():  # a leading newline: go on
                self.text += raw
                return True
            self.done = True
            return False
        self.text += raw
        if self._in_call() and b"</tool_call>" in self.text:
            self.done = True
        return True
