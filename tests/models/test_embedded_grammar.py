"""Constrained tool-call decoding on a toy byte-level vocabulary, driven by arbitrary logits:
whatever the "model" prefers, the output is one well-formed call the Hermes parser accepts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentkit.dialects import hermes

pytest.importorskip("numpy")  # the embedded-model extra
import numpy as np

from agentkit.models.grammar import (
    Choice,
    JsonNumber,
    JsonString,
    ToolCallConstraint,
    Vocabulary,
    argument_segments,
)

MULTI = [
    b"get",
    b"_weather",
    b"Paris",
    b" York",
    b'"',
    b'",',
    b"12",
    b"true",
    b"<tool_call>",
    b"ab",
]


def toy_vocab() -> Vocabulary:
    """Every single byte is a token (as in byte-level BPE), plus a few longer ones and a
    special token; forced text is encoded greedily, longest token first."""
    tokens = [bytes([b]) for b in range(256)] + MULTI + [b"<|im_end|>"]
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


TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "days": {"type": "integer"},
                    "unit": {"type": "string", "enum": ["C", "F"]},
                    "note": {"type": "string"},
                },
                "required": ["city", "days", "unit"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "parameters": {
                "type": "object",
                "properties": {
                    "precise": {"type": "boolean"},
                    "offset": {"type": "number"},
                    "tags": {"type": "array"},
                    "zone": {"type": ["null", "string"]},
                },
            },
        },
    },
    {"type": "function", "function": {"name": "now"}},
]


def run(constraint: ToolCallConstraint, vocab: Vocabulary, rng: np.random.Generator) -> str:
    """The decoder loop with random logits standing in for a model."""
    state = constraint.start(vocab)
    out: list[int] = []
    for _ in range(2000):
        step = state.next_step()
        if step.done:
            return b"".join(vocab.token_bytes[i] for i in out).decode(errors="replace")
        if step.forced:
            out.extend(step.forced)
            continue
        assert step.allowed is not None
        assert len(step.allowed) > 0
        assert not set(step.allowed.tolist()) & vocab.special_ids
        logits = rng.normal(size=len(vocab))
        token = int(step.allowed[np.argmax(logits[step.allowed])])
        if state.accept(token):
            out.append(token)
    raise AssertionError("the constraint never finished")


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_any_preference_gives_one_valid_call(seed: int) -> None:
    vocab = toy_vocab()
    text = run(ToolCallConstraint(TOOLS), vocab, np.random.default_rng(seed))
    parsed = hermes.parse(text, TOOLS)
    assert parsed.problems == []
    assert parsed.content == ""
    assert len(parsed.tool_calls) == 1
    call = parsed.tool_calls[0]
    if call.name == "get_weather":
        assert set(call.arguments) == {"city", "days", "unit"}
        assert isinstance(call.arguments["city"], str)
        assert call.arguments["city"]
        assert isinstance(call.arguments["days"], int)
        assert call.arguments["unit"] in ("C", "F")
    elif call.name == "get_time":
        assert set(call.arguments) == {"precise", "offset", "tags", "zone"}
        assert isinstance(call.arguments["precise"], bool)
        assert isinstance(call.arguments["offset"], int | float)
        assert call.arguments["tags"] == []
        assert isinstance(call.arguments["zone"], str)
    else:
        assert call == parsed.tool_calls[0]
        assert call.arguments == {}
    assert text.startswith('<tool_call>\n{"name": "')
    assert text.endswith("}}\n</tool_call>")


def test_names_restrict_the_choice() -> None:
    vocab = toy_vocab()
    for seed in range(10):
        text = run(ToolCallConstraint(TOOLS, names=["now"]), vocab, np.random.default_rng(seed))
        assert json.loads(text.split("\n")[1]) == {"name": "now", "arguments": {}}


def test_bad_tool_choice() -> None:
    with pytest.raises(ValueError, match="not among the tools"):
        ToolCallConstraint(TOOLS, names=["nope"])
    with pytest.raises(ValueError, match="not an OpenAI tool"):
        ToolCallConstraint([{"type": "function", "function": {"description": "x"}}])


def test_choice_follows_the_preferred_tokens() -> None:
    vocab = toy_vocab()
    choice = Choice(["get_weather", "get_time", "now"])
    step = choice.step(vocab)
    assert step is not None
    assert step.allowed is not None
    allowed = {vocab.token_bytes[i] for i in step.allowed.tolist()}
    assert allowed == {b"g", b"get", b"n"}
    assert choice.accept(vocab, vocab.bytes_to_id[b"get"])
    step = choice.step(vocab)
    assert step is not None
    assert step.allowed is not None
    assert {vocab.token_bytes[i] for i in step.allowed.tolist()} == {b"_", b"_weather"}
    choice.accept(vocab, vocab.bytes_to_id[b"_weather"])
    assert choice.step(vocab) is None
    assert choice.value == "get_weather"


def test_string_content_needs_no_escaping_and_is_capped() -> None:
    vocab = toy_vocab()
    bad = {b'"', b"\\", b"\n", b"\x00", b'",'}
    assert not {vocab.token_bytes[i] for i in vocab.string_ids.tolist()} & bad
    segment = JsonString(max_tokens=3)
    first = segment.step(vocab)
    assert first is not None
    assert first.forced == (vocab.bytes_to_id[b'"'],)
    step = segment.step(vocab)
    assert step is not None
    assert step.allowed is not None
    assert vocab.bytes_to_id[b'"'] not in step.allowed.tolist()  # never empty
    for _ in range(3):
        segment.accept(vocab, vocab.bytes_to_id[b"ab"])
        segment.step(vocab)
    assert segment.step(vocab) is None


def test_number_ends_on_a_terminator_that_is_not_emitted() -> None:
    vocab = toy_vocab()
    number = JsonNumber(fraction=True)
    for raw in (b"-", b"4", b".", b"5"):
        assert number.step(vocab) is not None
        assert number.accept(vocab, vocab.bytes_to_id[raw])
    assert number.step(vocab) is not None
    assert not number.accept(vocab, vocab.bytes_to_id[b","])
    assert number.step(vocab) is None


def test_argument_segments_follow_required_order() -> None:
    params = TOOLS[0]["function"]["parameters"]
    segments = argument_segments(params)
    literals = [getattr(s, "text", None) for s in segments]
    assert literals[0] == '"city": '
    assert ', "days": ' in literals
    assert ', "unit": ' in literals
    assert not any(t and "note" in t for t in literals)
