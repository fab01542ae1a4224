"""Token mode builds the calls of a turn without problems directly; that must be exactly what
``calls_from_parsed`` gives (ids aside: each call gets a fresh one of SGLang's shape), and a
turn with problems must still go through ``calls_from_parsed``. Request ids (a counter behind a
random prefix) must never repeat, in a forked child either."""

from __future__ import annotations

import os
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from agentkit.dialects import glm45
from agentkit.messages import ToolCall, UserMessage
from agentkit.models.base import ModelRequest
from agentkit.models.client_markup import calls_from_parsed
from agentkit.models.replay_wire import ReplayRequest
from agentkit.models.sglang_tokens import SGLangTokens, _calls
from agentkit.testing import load_test_tokenizer

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {
                "type": "object",
                "properties": {"key": {"type": "string"}, "n": {"type": "integer"}},
            },
        },
    }
]
_ID = re.compile(r"call_[0-9a-f]{24}")

pieces = st.sampled_from(
    [
        "<think>",
        "</think>",
        "\n",
        "<tool_call>",
        "lookup\n",
        "other\n",
        "</tool_call>",
        "<arg_key>key</arg_key>\n",
        "<arg_key>n</arg_key>\n",
        "<arg_value>k1</arg_value>\n",
        "<arg_value>7</arg_value>\n",
        "<arg_value>x7</arg_value>\n",
        "text ",
        "<|observation|>",
    ]
)
completions = st.one_of(
    st.builds(
        lambda args, tail: (
            "<think>r</think>\n<tool_call>lookup\n" + "".join(args) + "</tool_call>" + tail
        ),
        st.lists(
            st.sampled_from(
                ["<arg_key>key</arg_key>\n<arg_value>k1</arg_value>\n", "<arg_key>n</arg_key>\n"]
            ),
            max_size=3,
        ),
        st.sampled_from(["", "<|observation|>", "after", "<tool_call>lookup\n</tool_call>"]),
    ),
    st.lists(pieces, max_size=14).map("".join),
)


def view(call: ToolCall) -> tuple[object, ...]:
    return (call.name, call.arguments, call.raw_arguments, call.parse_error)


@settings(max_examples=400, deadline=None)
@given(completions, st.booleans())
def test_the_calls_are_those_of_calls_from_parsed(text: str, thinking: bool) -> None:
    parsed = glm45.parse(text, TOOLS, thinking=thinking)
    plain = glm45.parse_plain(text, TOOLS, thinking=thinking)
    fast, fast_malformed = _calls(plain, text, glm45.ToolSchemas.compiled(TOOLS), thinking)
    slow, slow_malformed = calls_from_parsed(parsed)
    assert [view(c) for c in fast] == [view(c) for c in slow]
    assert fast_malformed == slow_malformed
    assert all(_ID.fullmatch(c.id) for c in fast)
    assert len({c.id for c in fast}) == len(fast)


def test_a_turn_with_a_malformed_call_keeps_its_parse_error() -> None:
    text = "<think>r</think>\n<tool_call>lookup\n<arg_key>key</arg_key>\n</tool_call>"
    plain = glm45.parse_plain(text)
    assert plain[3]
    calls, _ = _calls(plain, text, None, True)
    assert calls and calls[0].parse_error


def test_request_ids_differ_within_a_process_and_in_a_forked_child() -> None:
    session = SGLangTokens("http://127.0.0.1:9", load_test_tokenizer()).session()
    request = ModelRequest(messages=[UserMessage(content="hi")])

    def rid() -> str:
        return str(session._body(request, [1], False, ReplayRequest())["rid"])

    first, second = rid(), rid()
    assert first != second
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child: its next id must not be the parent's next one
        os.write(write, rid().encode())
        os._exit(0)
    os.waitpid(child, 0)
    from_child = os.read(read, 200).decode()
    os.close(read)
    os.close(write)
    assert from_child != rid()


def test_call_ids_differ_within_a_process_and_in_a_forked_child() -> None:
    text = (
        "<think>r</think>\n<tool_call>lookup\n<arg_key>key</arg_key>\n"
        "<arg_value>k1</arg_value>\n</tool_call>"
    )
    assert not glm45.parse(text, TOOLS).problems  # the direct path, not calls_from_parsed's ids

    def call_id() -> str:
        calls, _ = _calls(glm45.parse_plain(text, TOOLS), text, None, True)
        return calls[0].id

    ids = [call_id() for _ in range(1000)]
    assert len(set(ids)) == len(ids)
    assert all(_ID.fullmatch(i) for i in ids)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child: its next id must not be the parent's next one
        os.write(write, call_id().encode())
        os._exit(0)
    os.waitpid(child, 0)
    from_child = os.read(read, 200).decode()
    os.close(read)
    os.close(write)
    assert _ID.fullmatch(from_child)
    assert from_child != call_id()
