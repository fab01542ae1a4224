"""A chat reply's assistant message (messages.assistant_reply), its usage counts, the loop's
response (recording.response_of) and the call input a chat model reuses are what validated
construction builds; values of other types are validated, as before."""

from __future__ import annotations

import time
from typing import Any

import pytest

from agentkit.messages import AssistantMessage, ToolCall, UserMessage, assistant_reply
from agentkit.models.base import ModelRequest, ModelResponse
from agentkit.models.chat_wire import ChatReply
from agentkit.models.recording import CallClock, CallInput, CallUsage, ModelReply, response_of
from agentkit.models.sglang_chat import SGLangChat
from agentkit.models.transport import _succeeded
from agentkit.trajectory.records import SharedParams
from tests.trusted_support import assert_same


class _Text(str):
    pass


def _calls() -> list[ToolCall]:
    return [ToolCall(id="c1", name="t", arguments={"x": 1}, raw_arguments='{"x": 1}')]


@pytest.mark.parametrize(
    ("content", "reasoning", "calls"),
    [
        ("answer", "because", []),
        ("", None, "calls"),
        ("x", "", "calls"),
        (_Text("sub"), None, []),  # validated: pydantic gives a plain str
        ("x", _Text("sub"), []),
    ],
    ids=["text", "calls", "empty-reasoning", "str-subclass", "reasoning-subclass"],
)
def test_an_assistant_reply_is_the_validated_one(content: str, reasoning: Any, calls: Any) -> None:
    given = _calls() if calls == "calls" else []
    fast = assistant_reply(content, reasoning, given)
    validated = AssistantMessage(content=content, reasoning_content=reasoning, tool_calls=given)
    assert_same(fast, validated)
    assert type(fast.model_fields_set).__name__ == "SharedFieldsSet"
    fast.content = "changed"  # an assignment gives it its own fields set
    assert assistant_reply("a", None, []).model_fields_set == validated.model_fields_set


def test_a_reply_with_a_call_of_another_type_is_validated() -> None:
    class _Call(ToolCall):
        pass

    call = _Call(id="c", name="t", raw_arguments="{}")
    fast = assistant_reply("", None, [call])
    assert_same(fast, AssistantMessage(content="", reasoning_content=None, tool_calls=[call]))


def _session(**kwargs: Any) -> Any:
    return SGLangChat("http://h:1", **kwargs).session(routing_key="k")


def _request() -> ModelRequest:
    return ModelRequest(messages=[UserMessage(content="hi")], episode_id="ep", turn=1)


@pytest.mark.parametrize(
    ("usage", "spec"),
    [
        ({"prompt_tokens": 7, "completion_tokens": 3}, 3),
        ({"prompt_tokens": 7, "prompt_tokens_details": {"cached_tokens": 2}}, None),
        ({"completion_tokens": True, "prompt_tokens": "7"}, None),  # not ints: left out
        ({"completion_tokens": 4}, True),  # a bool count: validated (to 1), as before
        ({}, None),
    ],
)
def test_the_usage_counts_are_the_validated_ones(usage: dict[str, Any], spec: Any) -> None:
    reply = ChatReply({"content": "a"}, usage, "stop", None, spec)
    fast = _session()._reply(_request(), reply, "http://h:1", []).usage
    validated = CallUsage(**{name: getattr(fast, name) for name in fast.model_fields_set})
    assert_same(fast, validated)
    details = usage.get("prompt_tokens_details") or {}
    completion = usage.get("completion_tokens")
    expected = CallUsage(
        prompt_tokens=usage.get("prompt_tokens")
        if type(usage.get("prompt_tokens")) is int
        else None,
        completion_tokens=completion if type(completion) is int else None,
        cached_tokens=details.get("cached_tokens"),
        spec_verify_ct=spec,
        accept_length=completion / spec if spec and isinstance(completion, int) else None,
    )
    assert_same(fast, expected)


def _reply(finish: Any = "tool_calls", message: AssistantMessage | None = None) -> ModelReply:
    return ModelReply(
        message=message or AssistantMessage(content="", tool_calls=_calls()),
        server="http://h:1",
        output_text="",
        finish_reason=finish,
        loop_finish_reason=None,
        usage=CallUsage(prompt_tokens=1),
        problems=["p"],
        malformed_calls=["m"],
        attempts=[_succeeded(1, "http://h:1", 1.0, time.perf_counter())],
    )


class _Message(AssistantMessage):
    pass


@pytest.mark.parametrize(
    "reply",
    [_reply(), _reply(finish=None), _reply(message=_Message(content="sub"))],
    ids=["tool_calls", "no-finish", "message-subclass"],
)
def test_the_loops_response_is_the_validated_one(reply: ModelReply) -> None:
    sent = CallInput(mode="chat", sampling_params={"model": "m"})
    fast = response_of(_request(), sent, reply, CallClock())
    validated = ModelResponse(
        message=reply.message,
        finish_reason=reply.loop_finish_reason or reply.finish_reason or "stop",
        problems=reply.problems,
        malformed_calls=reply.malformed_calls,
        record=fast.record,
    )
    assert_same(fast, validated)
    assert fast.message is reply.message
    assert fast.problems is not reply.problems  # copied, as validation copies them
    assert fast.malformed_calls is not reply.malformed_calls


def test_a_chat_model_reuses_its_call_input_while_the_params_are_the_same() -> None:
    model = SGLangChat("http://h:1")
    body = {"model": "m", "messages": [], "max_tokens": 8}
    first = model.call_input(body)
    assert_same(first, CallInput(mode="chat", sampling_params={"model": "m", "max_tokens": 8}))
    assert type(first.sampling_params) is SharedParams
    assert model.call_input(dict(body)) is first
    other = model.call_input({**body, "max_tokens": 9})
    assert other is not first and other.sampling_params == {"model": "m", "max_tokens": 9}
    listed = {**body, "stop": ["x"]}  # a list could change: a plain dict, never reused
    assert model.call_input(listed) is not model.call_input(listed)
    expected = {"model": "m", "max_tokens": 8, "stop": ["x"]}
    assert_same(model.call_input(listed), CallInput(mode="chat", sampling_params=expected))


def test_the_sampling_params_are_the_body_without_messages_and_tools_in_order() -> None:
    from agentkit.models.sglang_chat import _sampling

    for body in (
        {"model": "m", "messages": [], "max_tokens": 8, "tools": [{}], "tool_choice": "auto"},
        {"tools": [], "model": "m", "stream": False},
        {"model": "m"},
    ):
        expected = {k: v for k, v in body.items() if k not in ("messages", "tools")}
        params = _sampling(body)
        assert list(params.items()) == list(expected.items())
        assert (params is not body and "messages" in body) or "messages" not in body


def test_the_server_of_an_endpoint_is_its_base_url_each_time() -> None:
    from agentkit.models.transport import _server_of

    for url, server in [
        ("http://h:1/v1/chat/completions", "http://h:1"),
        ("http://h:2/generate", "http://h:2"),
        ("http://h:3/x/v1/chat/completions", "http://h:3/x"),
    ]:
        assert _server_of(url) == server
        assert _server_of(url) == server  # from what was kept
