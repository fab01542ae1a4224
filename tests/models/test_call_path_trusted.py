"""The call path's unvalidated constructions (``records.trusted``) build what validation builds:
the same ``model_dump``, ``model_fields_set``, JSON and ``__dict__`` (field order included), with
defaults fresh per model and no container shared with the values they were built from."""

from __future__ import annotations

import time
from typing import Any

import pytest

from agentkit.messages import AssistantMessage, SharedFieldsSet, ToolCall, UserMessage
from agentkit.models.base import ModelRequest, ModelSettings
from agentkit.models.chat_wire import ChatReply
from agentkit.models.recording import (
    CallClock,
    CallInput,
    CallUsage,
    ModelReply,
    TokenOutput,
    call_record,
)
from agentkit.models.sglang_chat import SGLangChat
from agentkit.models.transport import _succeeded
from agentkit.trajectory.packed import RaggedInts
from agentkit.trajectory.records import (
    Attempt,
    ModelCallRecord,
    TokenSegment,
    TokenSource,
    trusted,
)
from tests.trusted_support import assert_same


def test_a_successful_attempt_is_the_validated_one() -> None:
    t0 = time.perf_counter()
    fast = _succeeded(2, "http://h:1", 1234.5, t0)
    validated = Attempt(
        number=2,
        server="http://h:1",
        started_at=1234.5,
        elapsed_s=fast.elapsed_s,
        ok=True,
        status_code=200,
    )
    assert_same(fast, validated)
    assert type(fast.__pydantic_fields_set__) is SharedFieldsSet
    fast.error = "changed"  # an assignment gives the attempt its own set first
    assert "error" in fast.model_fields_set
    assert "error" not in _succeeded(1, "s", 0.0, t0).model_fields_set


def test_trusted_defaults_are_fresh_and_a_wrong_call_is_refused() -> None:
    given = {"episode_id": "e", "index": 0, "turn": 0, "mode": "chat"}
    first, second = trusted(ModelCallRecord, dict(given)), trusted(ModelCallRecord, dict(given))
    assert_same(first, ModelCallRecord(**given))
    first.problems.append("x")
    assert second.problems == []
    with pytest.raises(TypeError, match="missing"):
        trusted(ModelCallRecord, {"episode_id": "e"})
    with pytest.raises(TypeError, match="unknown"):
        trusted(ModelCallRecord, {**given, "not_a_field": 1})


def _request() -> ModelRequest:
    return ModelRequest(
        messages=[UserMessage(content="hi")], episode_id="ep_1", turn=3, call_index=4
    )


def _validated_record(
    request: ModelRequest, sent: CallInput, reply: ModelReply, fast: ModelCallRecord
) -> ModelCallRecord:
    """The record as validated construction builds it from the same values."""
    given: dict[str, Any] = {
        "input_ids": sent.input_ids,
        "appended": sent.appended,
        "output_text": reply.output_text,
        "sampling_params": sent.sampling_params,
        "finish_reason": reply.finish_reason,
        "matched_stop": reply.matched_stop,
        **reply.usage.model_dump(),
        "engine_meta": reply.engine_meta,
        "reasoning": reply.message.reasoning_content,
        "content": reply.message.content,
        "tool_calls": reply.message.tool_calls,
        "problems": reply.problems,
        "attempts": reply.attempts,
    }
    if reply.tokens is not None:
        given.update(reply.tokens.model_dump(exclude_none=True))
        given["routed_experts"] = reply.tokens.routed_experts
        given["sampling_mask"] = reply.tokens.sampling_mask
    empty: dict[str, Any] = {"output_text": "", "content": ""}
    kept = {
        k: v
        for k, v in given.items()
        if v is not None
        and v != empty.get(k, object())
        and not (isinstance(v, list | dict) and not v)
    }
    return ModelCallRecord(
        episode_id=request.episode_id,
        index=request.call_index,
        turn=request.turn,
        mode=sent.mode,
        server=reply.server,
        started_at=fast.started_at,
        elapsed_s=fast.elapsed_s,
        **kept,
    )


def _chat_reply() -> ModelReply:
    call = ToolCall(id="call_1", name="t", arguments={"a": 1}, raw_arguments='{"a": 1}')
    return ModelReply(
        message=AssistantMessage(content="", reasoning_content="why", tool_calls=[call]),
        server="http://h:1",
        output_text="",
        finish_reason="tool_calls",
        matched_stop=None,
        usage=CallUsage(prompt_tokens=10, completion_tokens=5, spec_verify_ct=2, accept_length=2.5),
        problems=["p"],
        attempts=[_succeeded(1, "http://h:1", 1.0, time.perf_counter())],
    )


def _token_reply() -> ModelReply:
    return ModelReply(
        message=AssistantMessage(content="done"),
        server="http://h:1",
        output_text="done",
        finish_reason="stop",
        matched_stop=151336,
        tokens=TokenOutput(
            output_ids=[5, 6, 7],
            output_logprobs=[-0.1, -0.2, -0.3],
            sampling_mask=RaggedInts.from_rows([[1], [2, 3], [4]]),
        ),
        usage=CallUsage(weight_version="v3", cached_tokens=4),
        engine_meta={"e2e_latency": 0.5},
    )


@pytest.mark.parametrize("mode", ["chat", "tokens"])
def test_a_call_record_is_the_validated_one(mode: str) -> None:
    request = _request()
    if mode == "chat":
        sent = CallInput(mode="chat", sampling_params={"model": "m", "max_tokens": 8})
        reply = _chat_reply()
    else:
        segment = TokenSegment(source=TokenSource.TOOL, ids=[3, 4], step_index=1)
        sent = CallInput(
            mode="tokens", sampling_params={"t": 1}, input_ids=[1, 2], appended=[segment]
        )
        reply = _token_reply()
    fast = call_record(request, sent, reply, CallClock())
    assert_same(fast, _validated_record(request, sent, reply, fast))
    # as validation does, the record copies every container it is given
    sources: list[tuple[Any, Any]] = [
        (fast.sampling_params, sent.sampling_params),
        (fast.problems, reply.problems),
        (fast.attempts, reply.attempts),
        (fast.appended, sent.appended),
        (fast.engine_meta, reply.engine_meta),
        (fast.tool_calls, reply.message.tool_calls),
    ]
    if reply.tokens is not None:
        sources += [
            (fast.input_ids, sent.input_ids),
            (fast.output_ids, reply.tokens.output_ids),
            (fast.output_logprobs, reply.tokens.output_logprobs),
        ]
    for kept, source in sources:
        assert kept is not source


@pytest.mark.parametrize("matched", [None, 151336, "</s>", True, 2.0], ids=repr)
def test_a_chat_reply_is_the_validated_one(matched: Any) -> None:
    """The chat backend trusts what it built; a ``matched_stop`` of another type than the
    field's goes through validation (which coerces it, as before)."""
    session = SGLangChat("http://h:1").session(routing_key="k")
    wire: dict[str, Any] = {
        "content": "answer",
        "reasoning_content": "because",
        "tool_calls": [{"id": "c1", "function": {"name": "t", "arguments": '{"x": 2}'}}],
    }
    usage = {
        "prompt_tokens": 7,
        "completion_tokens": 3,
        "prompt_tokens_details": {"cached_tokens": 2},
    }
    attempts = [_succeeded(1, "http://h:1", 1.0, time.perf_counter())]
    fast = session._reply(
        _request(), ChatReply(wire, usage, "stop", matched, 3), "http://h:1", attempts
    )
    validated = ModelReply(**{name: getattr(fast, name) for name in fast.model_fields_set})
    assert_same(fast, validated)
    assert fast.matched_stop == validated.matched_stop
    assert type(fast.matched_stop) is type(
        ModelReply(**{**validated.__dict__, "matched_stop": matched}).matched_stop
    )


def test_a_loop_request_shares_its_fields_set_and_an_assignment_gets_its_own() -> None:
    messages: list[Any] = [UserMessage(content="hi")]
    args: tuple[Any, ...] = (messages, [], "auto", True, ModelSettings(), "ep", 1, 2)
    fast, other = ModelRequest.of(*args), ModelRequest.of(*args)
    validated = ModelRequest(
        messages=messages,
        tools=[],
        tool_choice="auto",
        thinking=True,
        settings=ModelSettings(),
        episode_id="ep",
        turn=1,
        call_index=2,
    )
    assert_same(fast, validated)
    assert fast.__pydantic_fields_set__ is other.__pydantic_fields_set__
    fast.turn = 5
    assert fast.turn == 5 and other.turn == 1
    assert fast.model_fields_set == validated.model_fields_set
    assert fast.__pydantic_fields_set__ is not other.__pydantic_fields_set__
    copied = other.model_copy(update={"turn": 9})
    assert copied.turn == 9 and other.turn == 1
