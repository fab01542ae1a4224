"""``POST /generate``: SGLang's native token endpoint (token mode).

The prompt ids are decoded, the conversation is read back from the GLM-4.5 template, the
policy answers, and the engine cuts the answer at the first stop token or ``max_new_tokens``.
``output_ids`` and ``output_token_logprobs`` keep the matched stop token; only ``text`` is
trimmed (unless ``no_stop_trim``), as SGLang does.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from .engine import Generation
from .faults import FAULT_KEY, Fault, FaultKind, malform_completion
from .policy import PolicyRequest
from .prompt_parsing import parse_prompt
from .refusal import Refused
from .replay_meta import routed_experts_meta, sampling_mask_meta, sampling_mask_width
from .sse import common_prefix_length, open_sse, send_done, send_event
from .state import RequestRecord, ServerState, error_response, json_response

__all__ = ["handle_generate"]


class SamplingParams(BaseModel):
    model_config = ConfigDict(extra="allow")

    max_new_tokens: int | None = 128
    stop: str | list[str] | None = None
    stop_token_ids: list[int] | None = None
    skip_special_tokens: bool = True
    no_stop_trim: bool = False
    ignore_eos: bool = False


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    text: str | list[str] | None = None
    input_ids: list[int] | list[list[int]] | None = None
    sampling_params: SamplingParams | None = None
    rid: str | None = None
    stream: bool = False
    return_logprob: bool = False
    logprob_start_len: int = -1
    return_text_in_logprobs: bool = False
    return_routed_experts: bool = False
    routed_experts_start_len: int = 0
    return_sampling_mask: bool = False


def _stop_strings(params: SamplingParams) -> list[str]:
    if params.stop is None:
        return []
    return [params.stop] if isinstance(params.stop, str) else list(params.stop)


def _text(
    state: ServerState, ids: list[int], gen: Generation, params: SamplingParams, *, final: bool
) -> str:
    matched = gen.matched_stop
    trim_token = final and isinstance(matched, int) and not params.no_stop_trim
    text = state.tokenizer.decode(
        ids[:-1] if trim_token else ids, skip_special_tokens=params.skip_special_tokens
    )
    if final and isinstance(matched, str) and not params.no_stop_trim:
        cut = text.find(matched)
        text = text[:cut] if cut >= 0 else text
    return text


def _logprob_items(
    state: ServerState, ids: list[int], logprobs: list[float], with_text: bool
) -> list[list[Any]]:
    return [
        [lp, token, state.tokenizer.decode([token]) if with_text else None]
        for lp, token in zip(logprobs, ids, strict=True)
    ]


def _meta(
    state: ServerState,
    rid: str,
    gen: Generation,
    req: GenerateRequest,
    count: int,
    finish: dict[str, Any] | None,
    started: float,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "id": rid,
        "finish_reason": finish,
        "prompt_tokens": len(gen.prompt_ids),
        "weight_version": state.weight_version,
        "completion_tokens": count,
        "cached_tokens": gen.cached_tokens,
        "e2e_latency": round(time.perf_counter() - started, 6),
    }
    if req.return_logprob:
        meta["input_token_logprobs"] = (
            state.engine.input_logprobs(gen, req.logprob_start_len)
            if req.logprob_start_len >= 0
            else []
        )
        meta["output_token_logprobs"] = _logprob_items(
            state, gen.output_ids[:count], gen.logprobs[:count], req.return_text_in_logprobs
        )
    if req.return_sampling_mask:
        params = req.sampling_params.model_dump() if req.sampling_params else {}
        meta.update(
            sampling_mask_meta(
                gen.output_ids[:count],
                gen.logprobs[:count],
                sampling_mask_width(params),
                state.tokenizer.vocab_size,
            )
        )
    if finish is not None:
        meta.update(gen.spec_meta(state.engine.accept_length))
        options = state.options
        if req.return_routed_experts and options.enable_return_routed_experts:
            meta.update(
                routed_experts_meta(
                    gen.prompt_ids + gen.output_ids,
                    req.routed_experts_start_len,
                    options.moe_layers,
                    options.moe_top_k,
                    options.moe_experts,
                )
            )
    return meta


def _abort_reason() -> dict[str, Any]:
    return {
        "type": "abort",
        "message": "Abort request (aborted by /abort_request)",
        "status_code": 200,
        "err_type": None,
    }


async def handle_generate(
    state: ServerState, request: web.Request, record: RequestRecord
) -> web.StreamResponse:
    started = time.perf_counter()
    try:
        req, prompt_ids = _read_request(state, record)
        rid = req.rid or state.new_rid()
        epoch = state.abort_epoch()  # an abort from here on cuts this request
        gen = await _generate(state, request, record, req, prompt_ids)
    except Refused as refused:
        return refused.response
    if not req.stream:
        params = req.sampling_params or SamplingParams()
        outcome = _abort_reason() if state.is_aborted(rid, epoch) else gen.finish_reason
        payload = {
            "text": _text(state, gen.output_ids, gen, params, final=True),
            "output_ids": gen.output_ids,
            "meta_info": _meta(state, rid, gen, req, len(gen.output_ids), outcome, started),
        }
        record.response = payload
        return json_response(payload)
    return await _stream(state, request, record, _Stream(req, gen, rid, epoch, started))


def _refuse(message: str, status: int = 400) -> Refused:
    return Refused(error_response(message, status, openai=False))


def _read_request(state: ServerState, record: RequestRecord) -> tuple[GenerateRequest, list[int]]:
    """The validated request and its prompt ids (given, or the text encoded)."""
    try:
        req = GenerateRequest.model_validate(record.request)
    except ValidationError as exc:
        raise _refuse(f"invalid /generate request: {exc.errors()[0]['msg']}") from exc
    if (req.text is None) == (req.input_ids is None):
        raise _refuse("exactly one of 'text' or 'input_ids' is required")
    if isinstance(req.text, list) or (req.input_ids and isinstance(req.input_ids[0], list)):
        raise _refuse("batched /generate requests are not supported by the test server")
    if req.input_ids is not None:
        prompt_ids = [int(i) for i in req.input_ids if isinstance(i, int)]
        bad = [i for i in prompt_ids if not 0 <= i < state.tokenizer.vocab_size]
        if bad:
            raise _refuse(f"input_ids out of vocabulary: {bad[:5]}")
    else:
        prompt_ids = state.encoder.encode(req.text or "")
    if not prompt_ids:
        raise _refuse("the prompt is empty")
    if not 0 <= req.routed_experts_start_len <= len(prompt_ids):
        raise _refuse(
            f"routed_experts_start_len {req.routed_experts_start_len} outside "
            f"[0, {len(prompt_ids)}]"
        )
    return req, prompt_ids


async def _generate(
    state: ServerState,
    request: web.Request,
    record: RequestRecord,
    req: GenerateRequest,
    prompt_ids: list[int],
) -> Generation:
    """Read the conversation back from the prompt, ask the policy, let the engine generate."""
    prompt_text = state.tokenizer.decode(prompt_ids)
    recovered = parse_prompt(prompt_text)
    policy_request = PolicyRequest(
        messages=recovered.messages,
        tools=recovered.tools,
        prompt_text=prompt_text,
        enable_thinking=recovered.enable_thinking,
        endpoint="generate",
        assistant_prefix=recovered.assistant_prefix,
        request=record.request,
        call_index=state.policy.next_index(),
    )
    try:
        completion = await state.policy(policy_request)
    except Exception as exc:
        raise _refuse(f"policy failed: {type(exc).__name__}: {exc}", 500) from exc
    fault = request.get(FAULT_KEY)
    if isinstance(fault, Fault) and fault.kind is FaultKind.MALFORMED_TOOL_CALL:
        completion = malform_completion(completion)
    if state.options.latency_s:
        await asyncio.sleep(state.options.latency_s)
    params = req.sampling_params or SamplingParams()
    max_new = params.max_new_tokens
    if max_new is None:
        max_new = max(0, state.options.context_length - len(prompt_ids))
    return state.engine.generate(
        prompt_ids,
        completion,
        max_new_tokens=max_new,
        stop_token_ids=params.stop_token_ids or (),
        stop_strings=_stop_strings(params),
        ignore_eos=params.ignore_eos,
    )


@dataclass
class _Stream:
    req: GenerateRequest
    gen: Generation
    rid: str
    epoch: int
    started: float


async def _stream(
    state: ServerState, request: web.Request, record: RequestRecord, turn: _Stream
) -> web.StreamResponse:
    """The generation as SSE chunks, each with the text, ids and meta so far."""
    gen, req = turn.gen, turn.req
    params = req.sampling_params or SamplingParams()
    response = await open_sse(request)
    final_text = _text(state, gen.output_ids, gen, params, final=True)
    sizes = (
        [state.options.stream_tokens_per_chunk] * len(gen.output_ids)
        if state.options.stream_tokens_per_chunk
        else gen.steps
    )
    count = 0
    for size in sizes or [0]:
        count = min(len(gen.output_ids), count + size)
        last = count == len(gen.output_ids)
        aborted = not last and state.is_aborted(turn.rid, turn.epoch)
        finish: dict[str, Any] | None
        if last or aborted:
            text = (
                final_text
                if last
                else _text(state, gen.output_ids[:count], gen, params, final=False)
            )
            finish = _abort_reason() if aborted else gen.finish_reason
        else:
            partial = _text(state, gen.output_ids[:count], gen, params, final=False)
            text = final_text[: common_prefix_length(partial, final_text)]
            finish = None
        chunk = {
            "text": text,
            "output_ids": gen.output_ids[:count],
            "meta_info": _meta(state, turn.rid, gen, req, count, finish, turn.started),
        }
        record.chunks.append(chunk)
        await send_event(response, chunk)
        if finish is not None:
            break
        if state.options.chunk_delay_s:
            await asyncio.sleep(state.options.chunk_delay_s)
    await send_done(response)
    return response
