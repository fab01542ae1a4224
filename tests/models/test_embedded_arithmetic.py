"""The arithmetic-expression grammar, calls announced in a sentence, and one-line answers, on a
toy byte-level vocabulary driven by random logits: whatever the "model" prefers, the argument is
a whole, balanced expression and the call copies exactly what the sentence says."""

from __future__ import annotations

import ast
import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentkit.dialects import hermes

pytest.importorskip("numpy")  # the embedded-model extra
import numpy as np

from agentkit.models.grammar import Constraint, ToolCallConstraint, Vocabulary
from agentkit.models.grammar_arithmetic import FORMAT, ExpressionState
from agentkit.models.grammar_reasoned import FirstLine, ReasonedCallConstraint

MULTI = [b' "', b' "(', b')"', b" +", b" *", b" -", b" /", b" (", b").", b" is", b"12", b"\n"]


def toy_vocab() -> Vocabulary:
    tokens = [bytes([b]) for b in range(256)] + MULTI + [b" calcul", b"ator", b"<|im_end|>"]
    special = [len(tokens) - 1]
    by_bytes = {t: i for i, t in enumerate(tokens) if i not in special}

    def encode(text: str) -> list[int]:
        data, ids = text.encode(), []
        while data:
            for size in range(min(len(data), 12), 0, -1):
                if data[:size] in by_bytes:
                    ids.append(by_bytes[data[:size]])
                    data = data[size:]
                    break
        return ids

    return Vocabulary(tokens, encode, special_ids=special)


CALC: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "calculator",
        "parameters": {
            "type": "object",
            "properties": {"expression": {"type": "string", "format": FORMAT}},
            "required": ["expression"],
        },
    },
}
CLOCK: dict[str, Any] = {"type": "function", "function": {"name": "now", "parameters": {}}}


def decode(constraint: Constraint, vocab: Vocabulary, rng: np.random.Generator) -> str:
    state = constraint.start(vocab)
    out: list[int] = []
    for _ in range(3000):
        step = state.next_step()
        if step.done:
            return b"".join(vocab.token_bytes[i] for i in out).decode(errors="replace")
        if step.forced:
            out.extend(step.forced)
            continue
        logits = rng.normal(size=len(vocab))
        allowed = step.allowed if step.allowed is not None else np.arange(len(vocab))
        assert len(allowed) > 0
        token = int(allowed[np.argmax(logits[allowed])])
        if state.accept(token):
            out.append(token)
    raise AssertionError("the constraint never finished")


def feed(text: str) -> ExpressionState | None:
    state: ExpressionState | None = ExpressionState()
    for char in text.encode():
        state = state.feed(char) if state is not None else None
    return state


@pytest.mark.parametrize(
    ("text", "complete"),
    [
        ("(17 + 25) * 3", True),
        ("17 + 25", True),
        ("-4 * (2.5 - 1)", True),
        ("(17 + 25)", False),  # wholly wrapped: it must go on
        ("((1 + 2))", False),
        ("(1 + 2) * (3 + 4)", True),
        ("17", False),  # no operator
        ("(1 + 2", False),
        ("1 +", False),
        ("3.", False),
        ("0.5 + 10", True),
    ],
)
def test_complete_expressions(text: str, complete: bool) -> None:
    state = feed(text)
    assert state is not None
    assert state.complete is complete


@pytest.mark.parametrize(
    "text", ["1 + + 2", "1 2", "()", "1)", " 1", "1  + 2", "(* 2", "1..2", "a", "012 + 1"]
)
def test_text_outside_the_grammar(text: str) -> None:
    assert feed(text) is None


def is_whole_expression(text: str) -> bool:
    tree = ast.parse(text, mode="eval")
    state = feed(text)
    return isinstance(tree.body, ast.BinOp) and state is not None and state.complete


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_an_arithmetic_argument_is_always_a_whole_expression(seed: int) -> None:
    text = decode(ToolCallConstraint([CALC]), toy_vocab(), np.random.default_rng(seed))
    parsed = hermes.parse(text, [CALC])
    assert parsed.problems == []
    [call] = parsed.tool_calls
    assert is_whole_expression(call.arguments["expression"])


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_a_reasoned_call_copies_the_expression_of_its_sentence(seed: int) -> None:
    text = decode(ReasonedCallConstraint([CALC, CLOCK]), toy_vocab(), np.random.default_rng(seed))
    parsed = hermes.parse(text, [CALC, CLOCK])
    assert parsed.problems == []
    [call] = parsed.tool_calls
    if call.name == "now":
        assert parsed.content == "I will use the now tool."
        assert call.arguments == {}
        return
    sentence = re.fullmatch(
        r"I will use the calculator tool\. The expression is (.*)\.", parsed.content, re.S
    )
    assert sentence is not None, parsed.content
    assert call.arguments == {"expression": sentence.group(1)}
    assert is_whole_expression(sentence.group(1))
    assert text.endswith(json.dumps({"expression": sentence.group(1)}) + "}\n</tool_call>")


def test_names_narrow_a_reasoned_call() -> None:
    text = decode(
        ReasonedCallConstraint([CALC, CLOCK], names=["now"]), toy_vocab(), np.random.default_rng(1)
    )
    assert [c.name for c in hermes.parse(text, [CALC, CLOCK]).tool_calls] == ["now"]
    with pytest.raises(ValueError, match="not among the tools"):
        ReasonedCallConstraint([CALC], names=["nope"])


def first_line(text: str, *, calls: bool = True) -> str:
    """Feed ``text`` byte by byte (single-byte tokens) to FirstLine; what it keeps."""
    vocab = toy_vocab()
    state = FirstLine(calls=calls).start(vocab)
    kept = b""
    for byte in text.encode():
        if state.next_step().done:
            break
        if state.accept(byte):
            kept += bytes([byte])
    return kept.decode()


def test_an_answer_is_one_line_unless_it_calls_again() -> None:
    assert first_line("The answer is 126.\nAnd then some") == "The answer is 126."
    assert first_line("\nThe answer.\nmore") == "\nThe answer."
    call = '<tool_call>\n{"name": "now", "arguments": {}}\n</tool_call>'
    assert first_line(call + "\nafter") == call
    assert first_line(call, calls=False) == "<tool_call>"
