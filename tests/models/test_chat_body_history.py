"""A chat session sends its body as JSON bytes whose messages part it keeps from call to call
(chat_wire.WireHistory): the same bytes as encoding today's dict body (``to_openai`` of every
message) after any change to the history or its messages, for two sessions sharing messages
too; each message is encoded once while it stays the same."""

from __future__ import annotations

import json
import tracemalloc
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentkit.messages import (
    AssistantMessage,
    Message,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UserMessage,
    system_message,
    tool_result,
    user_message,
)
from agentkit.models import ModelRequest, SGLangChat, chat_wire
from agentkit.models.sglang_chat import ChatSession
from agentkit.models.transport import _dumps

_TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]


def _session(**kwargs: Any) -> ChatSession:
    return SGLangChat("http://127.0.0.1:9", **kwargs).session(routing_key="k")


def sent(session: ChatSession, messages: list[Message]) -> Any:
    request = ModelRequest(messages=messages, tools=_TOOLS)
    return session._encoded(request, session._fields(request, False))


def expected(session: ChatSession, messages: list[Message]) -> bytes:
    """Today's body: the dict with ``to_openai`` of every message, encoded whole."""
    return _dumps(session._body(ModelRequest(messages=messages, tools=_TOOLS), False))


def assert_sent_as_the_dict(session: ChatSession, messages: list[Message]) -> None:
    body = sent(session, messages)
    assert isinstance(body, bytes)
    want = expected(session, messages)
    assert json.loads(body) == json.loads(want)
    assert body == want


_texts = st.text(max_size=8) | st.sampled_from(["", "same", "é ✓ 🙂", '"quoted"\n'])


def _call(index: int, raw: bool) -> ToolCall:
    if raw:
        return ToolCall(id=f"c{index}", name="lookup", arguments={"k": index}, raw_arguments="{}")
    return ToolCall(id=f"c{index}", name="lookup", arguments={"k": index})  # sent from arguments


@st.composite
def _messages(draw: st.DrawFn) -> Message:
    kind = draw(st.sampled_from(["system", "user", "assistant", "tool", "plain"]))
    text = draw(_texts)
    if kind == "system":
        return system_message(text)
    if kind == "user":
        return user_message(text) if draw(st.booleans()) else UserMessage(content=text)
    if kind == "tool":
        return tool_result(f"c{len(text)}", "lookup", text, draw(st.booleans()))
    if kind == "plain":
        return ToolMessage(tool_call_id="x", content=text)
    calls = [_call(i, draw(st.booleans())) for i in range(draw(st.integers(0, 2)))]
    reasoning = draw(st.none() | _texts)
    return AssistantMessage(content=text, reasoning_content=reasoning, tool_calls=calls)


_ops = st.one_of(
    st.tuples(st.just("append"), _messages()),
    st.tuples(st.just("insert"), st.integers(0, 20), _messages()),
    st.tuples(st.just("replace"), st.integers(0, 20), _messages()),
    st.tuples(st.just("delete"), st.integers(0, 20)),
    st.tuples(st.just("truncate"), st.integers(0, 20)),
    st.tuples(st.just("assign"), st.integers(0, 20), _texts),
    st.tuples(st.just("add_call"), st.integers(0, 20), st.booleans()),
    st.tuples(st.just("drop_call"), st.integers(0, 20)),
    st.tuples(st.just("mutate_arguments"), st.integers(0, 20)),
    st.tuples(st.just("move_call"), st.integers(0, 20)),
    st.tuples(st.just("swap_call"), st.integers(0, 20), st.booleans()),
    st.tuples(st.just("set_anew"), st.integers(0, 20)),
    st.tuples(st.just("copy"), st.integers(0, 20)),
)


def _apply(history: list[Message], op: tuple[Any, ...]) -> list[Message]:
    name = op[0]
    at = op[1] % len(history) if len(op) > 1 and isinstance(op[1], int) and history else 0
    if name == "append":
        history.append(op[1])
    elif name == "insert":
        history.insert(at, op[2])
    elif not history:
        return history
    elif name == "replace":
        history[at] = op[2]
    elif name == "delete":
        del history[at]
    elif name == "truncate":
        del history[at:]
    elif name == "assign":
        message = history[at]
        message.content = op[2]
        if isinstance(message, AssistantMessage):
            message.reasoning_content = op[2] or None
    elif name == "add_call" and isinstance(history[at], AssistantMessage):
        history[at].tool_calls.append(_call(99, op[2]))  # type: ignore[union-attr]
    elif name == "drop_call" and isinstance(history[at], AssistantMessage):
        calls = history[at].tool_calls  # type: ignore[union-attr]
        if calls:
            calls.pop()
    elif name == "mutate_arguments" and isinstance(history[at], AssistantMessage):
        for call in history[at].tool_calls:  # type: ignore[union-attr]
            call.arguments["changed"] = at  # in place: only seen through the arguments
    elif name == "move_call":  # a call moved to the next assistant: the same calls in order
        assistants = [m for m in history[at:] if isinstance(m, AssistantMessage)]
        if len(assistants) >= 2 and assistants[0].tool_calls:
            assistants[1].tool_calls.insert(0, assistants[0].tool_calls.pop())
    elif name == "swap_call" and isinstance(history[at], AssistantMessage):
        calls = history[at].tool_calls  # type: ignore[union-attr]
        if calls:
            calls[0] = _call(50 + len(calls), op[2])  # the same length, another call
    elif name == "set_anew":
        return [*history[at:], user_message("anew")]
    elif name == "copy":
        history[at] = history[at].model_copy(deep=True)
    return history


@settings(max_examples=300, deadline=None)
@given(
    start=st.lists(_messages(), max_size=6),
    ops=st.lists(st.tuples(_ops, st.booleans()), max_size=12),
)
def test_the_body_is_the_dicts_encoding_whatever_happens_to_the_history(
    start: list[Message], ops: list[tuple[tuple[Any, ...], bool]]
) -> None:
    """Two sessions share the message objects (one sends only now and then): each one's body
    is what encoding the dict gives, after every change."""
    first, second = _session(), _session()
    history = list(start)
    assert_sent_as_the_dict(first, history)
    for op, both in ops:
        history = _apply(history, op)
        assert_sent_as_the_dict(first, history)
        if both:
            assert_sent_as_the_dict(second, history)


def test_each_message_is_encoded_once_while_it_stays_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    encoded: list[Any] = []

    def counting(value: Any) -> bytes:
        encoded.append(value)
        return _dumps(value)

    monkeypatch.setattr(chat_wire, "_dumps", counting)
    session = _session()
    history: list[Message] = [system_message("s"), user_message("u")]
    assert_sent_as_the_dict(session, history)
    assert len(encoded) == 2
    reply = AssistantMessage(content="", tool_calls=[_call(1, raw=True)])
    history += [reply, tool_result("c1", "lookup", "v", False)]
    assert_sent_as_the_dict(session, history)
    assert len(encoded) == 4  # the two new ones only
    assert_sent_as_the_dict(session, history)
    assert len(encoded) == 4  # nothing new
    reply.content = "changed"
    assert_sent_as_the_dict(session, history)
    assert len(encoded) == 8  # a field assigned: all again
    reply.tool_calls.append(_call(2, raw=False))
    assert_sent_as_the_dict(session, history)
    assert len(encoded) == 12  # a call added: all again
    assert_sent_as_the_dict(session, history)
    assert len(encoded) == 14  # a call sent from its arguments: it and what follows, each time


def test_what_is_kept_is_the_size_of_its_json() -> None:
    """orjson's own bytes hold ~1 KiB whatever their length: the kept JSON is a copy."""
    session = _session()
    history: list[Message] = [user_message("u")]
    assert_sent_as_the_dict(session, history)
    assert session._history._json == _dumps(history[0].to_openai())
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        part = _dumps(history[0].to_openai())
        kept = chat_wire._exact([part])
        del part
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept == _dumps(history[0].to_openai())
    assert held < 512


def test_a_message_that_will_not_encode_goes_as_the_dict() -> None:
    session = _session()
    history: list[Message] = [SystemMessage(content="s"), user_message("lone \ud800")]
    body = sent(session, history)
    assert body == session._body(ModelRequest(messages=history, tools=_TOOLS), False)
    history[1] = user_message("fine")
    assert_sent_as_the_dict(session, history)


@pytest.mark.parametrize(
    "extra",
    [
        {"messages": [{"role": "user", "content": "from extra_body"}]},
        {"model": "other"},
        {"messages": None},
    ],
)
def test_extra_fields_that_give_model_or_messages_win_as_before(extra: dict[str, Any]) -> None:
    session = _session(extra_body=extra)
    history: list[Message] = [system_message("s"), user_message("u")]
    body = sent(session, history)
    want = session._body(ModelRequest(messages=history, tools=_TOOLS), False)
    assert want.get("messages") == extra.get("messages", want["messages"])
    assert (body if isinstance(body, dict) else json.loads(body)) == json.loads(_dumps(want))


@pytest.mark.parametrize("edit", ["swap", "move", "add", "drop", "assign_list"])
def test_a_tool_call_list_changed_in_place_is_seen(edit: str) -> None:
    session = _session()
    first = AssistantMessage(content="", tool_calls=[_call(1, True), _call(2, True)])
    second = AssistantMessage(content="", tool_calls=[_call(3, True)])
    history: list[Message] = [user_message("u"), first, second]
    assert_sent_as_the_dict(session, history)
    if edit == "swap":
        first.tool_calls[0] = _call(9, True)
    elif edit == "move":
        second.tool_calls.insert(0, first.tool_calls.pop())
    elif edit == "add":
        second.tool_calls.append(_call(9, True))
    elif edit == "drop":
        first.tool_calls.pop(0)
    else:
        first.tool_calls = [_call(9, True)]
    assert_sent_as_the_dict(session, history)
