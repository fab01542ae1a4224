"""The one place a model call becomes a :class:`~agentkit.trajectory.records.ModelCallRecord`.

A backend says what it sent (:class:`CallInput`) and returns what it got (:class:`ModelReply`);
:func:`recorded_call` wraps the call, times it, and turns the pair into the call's record, or,
when the call raises :class:`~agentkit.models.base.ModelError` after every attempt, into the
failed call's record (set on the error for the loop to write). A new backend writes no record
code: it fills these two types.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from pydantic import BaseModel, Field

from agentkit.messages import AssistantMessage, ToolCall, assemble
from agentkit.models.base import ModelError, ModelRequest, ModelResponse
from agentkit.trajectory.packed import RaggedInts, RoutedExperts
from agentkit.trajectory.records import (
    Attempt,
    ModelCallRecord,
    SharedParams,
    TokenSegment,
    share_fields_set,
    trusted,
)


class CallInput(BaseModel):
    """What a backend sends, known before the call: kept in the record even when it fails."""

    mode: Literal["tokens", "chat"]
    sampling_params: dict[str, Any] = Field(default_factory=dict)
    # token mode: the ids sent and the segments appended to the previous call's context
    input_ids: list[int] | None = None
    appended: list[TokenSegment] = Field(default_factory=list)


class TokenOutput(BaseModel):
    """The generated token ids and, where the server gave them, their log-probs and replay data."""

    output_ids: list[int]
    output_logprobs: list[float] | None = None
    routed_experts: RoutedExperts | None = None
    sampling_mask: RaggedInts | None = None


class CallUsage(BaseModel):
    """Token counts and engine figures the server reported (``None`` where it did not)."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    spec_verify_ct: int | None = None
    accept_length: float | None = None
    weight_version: str | None = None


class ModelReply(BaseModel):
    """What one successful call got back, as the backend saw it.

    ``finish_reason`` is the server's (recorded as is); ``loop_finish_reason`` what the loop is
    told (e.g. ``tool_calls`` where the server said ``stop``), the server's when ``None``.
    """

    message: AssistantMessage
    server: str
    output_text: str
    finish_reason: str | None
    loop_finish_reason: str | None = None
    matched_stop: int | str | None = None
    tokens: TokenOutput | None = None
    usage: CallUsage = Field(default_factory=CallUsage)
    engine_meta: dict[str, Any] = Field(default_factory=dict)
    problems: list[str] = Field(default_factory=list)
    malformed_calls: list[str] = Field(default_factory=list)
    attempts: list[Attempt] = Field(default_factory=list)

    @property
    def tool_calls(self) -> list[ToolCall]:
        return self.message.tool_calls


class CallClock:
    """When a call started (wall clock, recorded) and how long it has run (monotonic)."""

    def __init__(self) -> None:
        self.started = time.time()
        self._t0 = time.perf_counter()

    def elapsed_s(self) -> float:
        return time.perf_counter() - self._t0


async def recorded_call(
    request: ModelRequest, sent: CallInput, call: Callable[[], Awaitable[ModelReply]]
) -> ModelResponse:
    """Run ``call`` and return the loop's response with the call's record; on
    :class:`ModelError`, set the failed call's record on the error and re-raise it."""
    clock = CallClock()
    try:
        reply = await call()
    except ModelError as exc:
        exc.record = failed_call_record(request, sent, exc, clock)
        raise
    return response_of(request, sent, reply, clock)


def response_of(
    request: ModelRequest, sent: CallInput, reply: ModelReply, clock: CallClock
) -> ModelResponse:
    """The loop's response to a call that got ``reply``, with the call's record (what
    :func:`recorded_call` returns; a backend that times the call itself calls this)."""
    values = {
        "message": reply.message,
        "finish_reason": reply.loop_finish_reason or reply.finish_reason or "stop",
        "problems": list(reply.problems),  # copied, as validation copies them
        "malformed_calls": list(reply.malformed_calls),
        "record": call_record(request, sent, reply, clock),
    }
    if type(values["message"]) is AssistantMessage and type(values["finish_reason"]) is str:
        # assembled: a typed reply's values, every field in field order and given (a set of
        # its own: the model does not copy a shared one); tests/models/test_call_path_replies.py
        return assemble(ModelResponse, values, set(_RESPONSE_FIELDS))
    return ModelResponse(**values)


_RESPONSE_FIELDS = ("message", "finish_reason", "problems", "malformed_calls", "record")


def call_record(
    request: ModelRequest, sent: CallInput, reply: ModelReply, clock: CallClock
) -> ModelCallRecord:
    """The record of a call that got ``reply``. Fields left at their defaults (``None``, empty)
    are not passed: the record is the same, and pydantic keeps a much smaller set of the
    fields given, which is most of a record's memory while its run is in flight.

    Built without validation (:func:`~agentkit.trajectory.records.trusted`): every value comes
    from a typed model (the request, ``sent``, ``reply``), and each container is copied, as
    validation copies it, so the record shares no list with the reply."""
    message = reply.message
    values: dict[str, Any] = {
        "episode_id": request.episode_id,
        "index": request.call_index,
        "turn": request.turn,
        "mode": sent.mode,
        "server": reply.server,
        "started_at": clock.started,
        "elapsed_s": clock.elapsed_s(),
    }
    # each field only when it is not its default (None, or an empty text or container)
    if sent.input_ids is not None:
        values["input_ids"] = list(sent.input_ids)
    if sent.appended:
        values["appended"] = list(sent.appended)
    if reply.output_text:
        values["output_text"] = reply.output_text
    if sent.sampling_params:
        values["sampling_params"] = _own(sent.sampling_params)
    if reply.finish_reason is not None:
        values["finish_reason"] = reply.finish_reason
    if reply.matched_stop is not None:
        values["matched_stop"] = reply.matched_stop
    for key, value in reply.usage.__dict__.items():  # the same keys as the record's
        if value is not None:
            values[key] = value
    if reply.engine_meta:
        values["engine_meta"] = dict(reply.engine_meta)
    if message.reasoning_content is not None:
        values["reasoning"] = message.reasoning_content
    if message.content:
        values["content"] = message.content
    if message.tool_calls:
        values["tool_calls"] = list(message.tool_calls)
    if reply.problems:
        values["problems"] = list(reply.problems)
    if reply.attempts:
        values["attempts"] = list(reply.attempts)
    tokens = reply.tokens
    if tokens is not None:
        values["output_ids"] = list(tokens.output_ids)
        if tokens.output_logprobs is not None:
            values["output_logprobs"] = list(tokens.output_logprobs)
        if tokens.routed_experts is not None:
            values["routed_experts"] = tokens.routed_experts
        if tokens.sampling_mask is not None:
            values["sampling_mask"] = tokens.sampling_mask
    return trusted(ModelCallRecord, values)


def _own(params: dict[str, Any]) -> dict[str, Any]:
    """The record's sampling params: a shared (read-only) set as is, else a copy."""
    return params if type(params) is SharedParams else dict(params)


def failed_call_record(
    request: ModelRequest, sent: CallInput, exc: ModelError, clock: CallClock
) -> ModelCallRecord:
    """The record of a call that failed after every attempt (``failed=True``, no output)."""
    servers = [a.server for a in exc.attempts]
    record = ModelCallRecord(
        episode_id=request.episode_id,
        index=request.call_index,
        turn=request.turn,
        mode=sent.mode,
        server=servers[-1] if servers else "",
        started_at=clock.started,
        elapsed_s=clock.elapsed_s(),
        input_ids=sent.input_ids,
        appended=list(sent.appended),
        sampling_params=sent.sampling_params,
        attempts=list(exc.attempts),
        failed=True,
        error=str(exc),
        error_cause=exc.cause,
    )
    share_fields_set(record)
    return record
