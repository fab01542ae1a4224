"""Constrained decoding for small models: make them write a well-formed tool call.

A 135M-parameter model does not follow a tool-call format on its own. Here the call's structure
is forced and the model only chooses what it must: which tool, and each argument's value. The
result is a Hermes-style call the :mod:`agentkit.dialects.hermes` parser reads::

    <tool_call>
    {"name": "get_weather", "arguments": {"city": "Paris"}}
    </tool_call>

A constraint is a small state machine over token ids: at each step it either forces a run of
tokens (fed to the model without sampling), restricts the next token to an allowed set (the
decoder takes the best allowed token), or says it is done. It works on any byte-level vocabulary
(:class:`Vocabulary`) and needs no model, so it is tested on its own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

try:
    import numpy as np
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError("constrained decoding needs numpy: pip install 'agentkit[embedded]'") from exc

from .grammar_arithmetic import FORMAT, ArithmeticString
from .grammar_base import Constraint, ConstraintState, IdArray, Step, Vocabulary

# the vocabulary and step protocol live in grammar_base; they are re-exported from here
__all__ = [
    "CALL_PREFIX",
    "CALL_SUFFIX",
    "CallConstraint",
    "Choice",
    "Constraint",
    "ConstraintState",
    "IdArray",
    "JsonNumber",
    "JsonString",
    "Literal",
    "SegmentQueue",
    "Step",
    "ToolCallConstraint",
    "Vocabulary",
    "argument_segments",
    "required_keys",
]

CALL_PREFIX = '<tool_call>\n{"name": "'
CALL_SUFFIX = "}}\n</tool_call>"


# -- segments ----------------------------------------------------------------------------------


class _Segment(Protocol):
    def step(self, vocab: Vocabulary) -> Step | None:
        """The next step, or None when the segment is complete."""
        ...

    def accept(self, vocab: Vocabulary, token_id: int) -> bool: ...


@dataclass
class Literal:
    """Text written as is (tokenised by the model's own tokenizer)."""

    text: str
    _sent: bool = False

    def step(self, vocab: Vocabulary) -> Step | None:
        if self._sent:
            return None
        self._sent = True
        return Step(forced=tuple(vocab.encode(self.text)))

    def accept(self, vocab: Vocabulary, token_id: int) -> bool:
        raise AssertionError("a literal accepts no sampled token")


@dataclass
class Choice:
    """One of ``options``, chosen token by token by the model's preference."""

    options: Sequence[str]
    chosen: bytes = b""
    _options: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.options:
            raise ValueError("a choice needs at least one option")
        self._options = [option.encode() for option in self.options]

    @property
    def value(self) -> str | None:
        return self.chosen.decode() if self.chosen in self._options else None

    def step(self, vocab: Vocabulary) -> Step | None:
        if self.chosen in self._options:
            return None  # complete; a shorter option wins over longer ones sharing its prefix
        live = [o for o in self._options if o.startswith(self.chosen)]
        allowed: set[int] = set()
        for option in live:
            rest = option[len(self.chosen) :]
            for end in range(1, len(rest) + 1):
                token = vocab.bytes_to_id.get(rest[:end])
                if token is not None:
                    allowed.add(token)
        if not allowed:
            raise ValueError(f"no token continues {self.chosen!r} towards {self._options!r}")
        return Step(allowed=np.asarray(sorted(allowed), dtype=np.int64))

    def accept(self, vocab: Vocabulary, token_id: int) -> bool:
        self.chosen += vocab.token_bytes[token_id]
        return True


@dataclass
class JsonString:
    """A JSON string literal written by the model: opening quote forced, content restricted to
    tokens that need no escaping, closed by the model's quote or after ``max_tokens``."""

    max_tokens: int = 48
    _opened: bool = False
    _count: int = 0
    _closed: bool = False
    _forced_close: bool = False

    def step(self, vocab: Vocabulary) -> Step | None:
        if self._closed:
            return None
        if not self._opened:
            self._opened = True
            return Step(forced=(vocab.bytes_to_id[b'"'],))
        if self._count >= self.max_tokens:
            self._closed = True
            return Step(forced=(vocab.bytes_to_id[b'"'],))
        allowed = vocab.string_ids
        if self._count > 0:
            allowed = np.append(allowed, vocab.bytes_to_id[b'"'])
        return Step(allowed=allowed)

    def accept(self, vocab: Vocabulary, token_id: int) -> bool:
        if vocab.token_bytes[token_id] == b'"':
            self._closed = True
        else:
            self._count += 1
        return True


@dataclass
class JsonNumber:
    """An integer (or with ``fraction``, a decimal) written digit by digit; the model ends it by
    picking a token that cannot continue a number (not emitted)."""

    fraction: bool = False
    max_tokens: int = 12
    _text: bytes = b""
    _done: bool = False

    def step(self, vocab: Vocabulary) -> Step | None:
        if self._done:
            return None
        if len(self._text) >= self.max_tokens:
            if self._text == b"-" or self._text.endswith(b"."):
                self._text += b"0"  # never leave a number unfinished
                return Step(forced=(vocab.bytes_to_id[b"0"],))
            return None
        digits = vocab.digit_ids
        # JSON has no leading zeros: a number may start with "0" only as the whole integer part.
        leading = vocab.cached_ids(
            "number_start", lambda r: (r.isdigit() and r[:1] != b"0") or r == b"0"
        )
        if not self._text:
            return Step(allowed=np.append(leading, vocab.bytes_to_id[b"-"]))
        if self._text == b"-":
            return Step(allowed=leading)
        if self._text.endswith(b"."):
            return Step(allowed=digits)
        extra = [vocab.bytes_to_id[b","], vocab.bytes_to_id[b"}"]]
        if self.fraction and b"." not in self._text:
            extra.append(vocab.bytes_to_id[b"."])
        if self._text in (b"0", b"-0"):
            return Step(allowed=np.asarray(extra, dtype=np.int64))
        return Step(allowed=np.append(digits, extra))

    def accept(self, vocab: Vocabulary, token_id: int) -> bool:
        raw = vocab.token_bytes[token_id]
        if raw in (b",", b"}"):
            self._done = True
            return False
        self._text += raw
        return True


# -- tool calls --------------------------------------------------------------------------------


def _function(tool: Mapping[str, Any]) -> Mapping[str, Any]:
    function = tool.get("function", tool)
    if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
        raise ValueError(f"not an OpenAI tool definition: {tool!r}")
    return function


def _value_segments(schema: Mapping[str, Any]) -> list[_Segment]:
    if schema.get("format") == FORMAT:
        return [ArithmeticString()]
    if schema.get("enum"):
        return [Choice([json.dumps(v, ensure_ascii=False) for v in schema["enum"]])]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind is None:
        for key in ("anyOf", "oneOf"):
            for option in schema.get(key) or ():
                if isinstance(option, Mapping) and option.get("type") not in (None, "null"):
                    return _value_segments(option)
    if kind == "integer":
        return [JsonNumber()]
    if kind == "number":
        return [JsonNumber(fraction=True)]
    if kind == "boolean":
        return [Choice(["true", "false"])]
    if kind == "array":
        return [Literal("[]")]
    if kind == "object":
        return [Literal("{}")]
    if kind == "null":
        return [Literal("null")]
    return [JsonString()]


def required_keys(parameters: Mapping[str, Any]) -> list[str]:
    """The keys a call writes: the required ones (all when none is marked), in schema order."""
    properties = parameters.get("properties") or {}
    required = parameters.get("required")
    return [k for k in properties if required is None or k in required]


def argument_segments(parameters: Mapping[str, Any]) -> list[_Segment]:
    """``"key": value`` for each required parameter (all of them when none is marked required),
    in the schema's order, separated by ``, ``; the caller writes the braces."""
    properties = parameters.get("properties") or {}
    segments: list[_Segment] = []
    for position, key in enumerate(required_keys(parameters)):
        schema = properties[key] if isinstance(properties[key], Mapping) else {}
        separator = ", " if position else ""
        values = _value_segments(schema)
        # a segment that writes its own leading space (token healing at the key/value edge)
        space = "" if getattr(values[0], "writes_space", False) else " "
        segments.append(Literal(f"{separator}{json.dumps(key, ensure_ascii=False)}:{space}"))
        segments.extend(values)
    return segments


class CallConstraint:
    """What every call constraint starts from: the offered tools' parameter schemas by name,
    and the names the call may choose among (``names``, or all of them)."""

    def __init__(
        self, tools: Sequence[Mapping[str, Any]], *, names: Sequence[str] | None = None
    ) -> None:
        functions = [_function(tool) for tool in tools]
        self.parameters = {f["name"]: f.get("parameters") or {} for f in functions}
        self.names = list(names) if names is not None else list(self.parameters)
        unknown = [n for n in self.names if n not in self.parameters]
        if unknown or not self.names:
            raise ValueError(f"tool choice {unknown or self.names!r} is not among the tools")


class SegmentQueue:
    """A constraint state that runs its segments in order; once the tool's name is chosen
    (``name_choice`` complete), the queue is replaced by :meth:`expand`'s segments."""

    def __init__(self, vocab: Vocabulary, queue: list[_Segment], name_choice: Choice) -> None:
        self.vocab = vocab
        self.queue = queue
        self.name_choice = name_choice
        self.expanded = False

    def expand(self) -> list[_Segment]:
        raise NotImplementedError

    def next_step(self) -> Step:
        while self.queue:
            segment = self.queue[0]
            step = segment.step(self.vocab)
            if step is not None:
                return step
            self.queue.pop(0)
            if segment is self.name_choice and not self.expanded:
                self.expanded = True
                self.queue = self.expand()
        return Step(done=True)

    def accept(self, token_id: int) -> bool:
        return self.queue[0].accept(self.vocab, token_id)


class ToolCallConstraint(CallConstraint):
    """Exactly one Hermes-style call to one of ``tools`` (or of ``names`` among them)."""

    def start(self, vocab: Vocabulary) -> ConstraintState:
        return _ToolCallState(self, vocab)


class _ToolCallState(SegmentQueue):
    def __init__(self, constraint: ToolCallConstraint, vocab: Vocabulary) -> None:
        self.constraint = constraint
        name_choice = Choice([json.dumps(n)[1:] for n in constraint.names])
        super().__init__(vocab, [Literal(CALL_PREFIX), name_choice], name_choice)

    def expand(self) -> list[_Segment]:
        name = json.loads('"' + (self.name_choice.value or '"'))
        return [
            Literal(', "arguments": {'),
            *argument_segments(self.constraint.parameters[name]),
            Literal(CALL_SUFFIX),
        ]
