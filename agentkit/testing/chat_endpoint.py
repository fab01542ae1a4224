"""``POST /v1/chat/completions`` as SGLang serves GLM-4.5 (``--tool-call-parser glm45
--reasoning-parser glm45``).

The messages are rendered with the GLM-4.5 template and tokenised (:mod:`.chat_request`); the
policy writes the raw completion; the engine appends the stop token and applies
``max_tokens``; the output is parsed with the glm45 dialect into reasoning, content and tool
calls (:mod:`.chat_reply_parser`), answered whole (here) or as a stream of deltas
(:mod:`.chat_stream`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from agentkit.dialects.glm45 import render

from .chat_fields import (
    ChatGeneration,
    finish,
    logprobs,
    meta_info,
    output_text,
    sglext,
    usage,
)
from .chat_reply_parser import Answer, ReplyParser
from .chat_request import BadRequest, ChatRequest, enable_thinking, normalize_messages, prompt_tools
from .chat_stream import stream_chat
from .policy import PolicyRequest
from .refusal import Refused
from .state import RequestRecord, ServerState, error_response, json_response

__all__ = ["handle_chat_completions"]


async def handle_chat_completions(
    state: ServerState, request: web.Request, record: RequestRecord
) -> web.StreamResponse:
    started = time.perf_counter()
    try:
        req, messages, tools = _read_request(record)
        turn = await _generate(state, record, req, messages, tools, started)
    except Refused as refused:
        return refused.response
    if req.stream:
        return await stream_chat(state, request, record, turn)
    payload = _whole_answer(state, turn)
    record.response = payload
    return json_response(payload)


def _read_request(
    record: RequestRecord,
) -> tuple[ChatRequest, list[dict[str, Any]], list[dict[str, Any]]]:
    """The validated request, its template-ready messages and the tools of its prompt."""
    try:
        req = ChatRequest.model_validate(record.request)
        if req.n != 1:
            raise BadRequest("the test server supports n=1 only")
        return req, normalize_messages(req.messages), prompt_tools(req)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise Refused(error_response(f"invalid request: {where}: {first['msg']}", 400)) from exc
    except BadRequest as exc:
        raise Refused(error_response(str(exc), 400)) from exc


async def _generate(
    state: ServerState,
    record: RequestRecord,
    req: ChatRequest,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]],
    started: float,
) -> ChatGeneration:
    """Render the prompt, ask the policy, and let the engine generate the completion."""
    thinking = enable_thinking(req)
    try:
        prompt_text = render(messages, tools or None, enable_thinking=thinking)
    except Exception as exc:
        raise Refused(error_response(f"chat template failed: {exc}", 400)) from exc
    prompt_ids = state.encoder.encode(prompt_text)
    rid = req.rid or state.new_rid()
    epoch = state.abort_epoch()
    policy_request = PolicyRequest(
        messages=messages,
        tools=tools,
        prompt_text=prompt_text,
        enable_thinking=thinking,
        endpoint="chat",
        request=record.request,
        call_index=state.policy.next_index(),
    )
    try:
        completion = await state.policy(policy_request)
    except Exception as exc:
        message = f"policy failed: {type(exc).__name__}: {exc}"
        raise Refused(error_response(message, 500)) from exc
    if state.options.latency_s:
        await asyncio.sleep(state.options.latency_s)
    gen = state.engine.generate(
        prompt_ids,
        completion,
        max_new_tokens=req.max_new_tokens(state.options.context_length, len(prompt_ids)),
        stop_token_ids=req.stop_token_ids or (),
        stop_strings=req.stop_strings(),
        ignore_eos=req.ignore_eos,
    )
    skip = req.skip_special_tokens and not tools
    return ChatGeneration(
        req=req,
        gen=gen,
        parser=ReplyParser(tools, thinking=thinking, separate_reasoning=req.separate_reasoning),
        text=output_text(state, gen.output_ids, gen, req, skip=skip, final=True),
        rid=rid,
        epoch=epoch,
        created=int(time.time()),
        started=started,
        skip_special=skip,
    )


def _whole_answer(state: ServerState, turn: ChatGeneration) -> dict[str, Any]:
    """The ``chat.completion`` body of a non-streamed request."""
    req, gen = turn.req, turn.gen
    answer = Answer()
    for delta in turn.parser.feed(turn.text) + turn.parser.close():
        answer.add(delta)
    aborted = state.is_aborted(turn.rid, turn.epoch)
    reason, matched = ("abort", None) if aborted else finish(gen, bool(answer.calls))
    reasoning = "".join(answer.reasoning)
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(answer.content),
        "reasoning_content": reasoning or None,
    }
    if answer.calls:
        message["tool_calls"] = [answer.calls[i] for i in sorted(answer.calls)]
    choice: dict[str, Any] = {
        "index": 0,
        "message": message,
        "logprobs": logprobs(state, gen) if req.logprobs else None,
        "finish_reason": reason,
        "matched_stop": matched,
    }
    if req.return_token_ids:
        choice["prompt_token_ids"] = gen.prompt_ids
        choice["response_token_ids"] = gen.output_ids
    if req.return_meta_info:
        choice["meta_info"] = meta_info(state, gen, turn.rid, turn.started)
    payload = {
        "id": turn.rid,
        "object": "chat.completion",
        "created": turn.created,
        "model": req.model,
        "choices": [choice],
        "usage": usage(state, gen, reasoning, req),
        "metadata": {"weight_version": state.weight_version},
    }
    ext = sglext(state, gen, req)
    if ext is not None:
        payload["sglext"] = ext
    return payload
