"""The server's tool calls (chat_wire.tool_calls_from_wire) are what validated construction
builds, whether built without validation (text arguments parsed here, or none) or validated
(arguments sent as an object, a parse error)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentkit.messages import SharedFieldsSet, ToolCall
from agentkit.models.chat_wire import tool_calls_from_wire
from tests.trusted_support import assert_same

_WIRE: list[Any] = [
    {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": '{"k": "v"}'}},
    {"id": "c2", "function": {"name": "t", "arguments": '{"n": [1, 2.5, {"x": null}]}'}},
    {"id": "c3", "function": {"name": "t", "arguments": ""}},
    {"id": "c4", "function": {"name": "t", "arguments": "   "}},
    {"id": "c5", "function": {"name": "t"}},
    {"id": 7, "function": {"name": "t", "arguments": "{}"}},  # an id that is not a string
    {"function": {"name": "t", "arguments": "{}"}},  # no id: one is made
    {"id": "c8", "function": {"name": "t", "arguments": {"as": "object"}}},  # validated
    {"id": "c9", "function": {"name": "t", "arguments": "not json"}},  # parse error
    {"id": "c10", "function": {"name": "", "arguments": "{}"}},  # no name
    {"id": "c11", "function": {"name": "t", "arguments": "[1]"}},  # not an object
]


def _validated(call: ToolCall) -> ToolCall:
    return ToolCall(**{name: getattr(call, name) for name in call.model_fields_set})


@pytest.mark.parametrize("wire", _WIRE, ids=[str(w.get("id")) for w in _WIRE])
def test_each_call_is_the_validated_one(wire: dict[str, Any]) -> None:
    calls, _ = tool_calls_from_wire([wire])
    (call,) = calls
    assert_same(call, _validated(call))
    assert type(call.model_fields_set) is SharedFieldsSet
    arguments = wire["function"].get("arguments")
    if isinstance(arguments, str) and arguments.strip() and call.parse_error is None:
        assert call.arguments == json.loads(arguments)
        assert call.raw_arguments == arguments


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(
    arguments=st.dictionaries(st.text(max_size=5), _json, max_size=4).map(json.dumps)
    | st.text(max_size=10),
    call_id=st.text(max_size=6),
)
def test_any_call_is_the_validated_one(arguments: str, call_id: str) -> None:
    wire = {"id": call_id, "function": {"name": "t", "arguments": arguments}}
    calls, problems = tool_calls_from_wire([wire])
    (call,) = calls
    assert_same(call, _validated(call))
    assert (call.parse_error is None) == (not problems)
