"""One chat generation and the answer fields the whole and the streamed reply share: the
visible text, ``finish_reason``, ``usage``, ``meta_info``, ``sglext`` and log-probs."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .chat_reply_parser import ReplyParser
from .chat_request import ChatRequest
from .engine import Generation
from .state import ServerState

__all__ = ["ChatGeneration", "finish", "logprobs", "meta_info", "output_text", "sglext", "usage"]


@dataclass
class ChatGeneration:
    """What the engine generated for one chat request, and what answering it needs."""

    req: ChatRequest
    gen: Generation
    parser: ReplyParser
    text: str
    """the final visible completion text (stop trimmed unless ``no_stop_trim``)"""
    rid: str
    epoch: int
    created: int
    started: float
    skip_special: bool


def finish(gen: Generation, has_calls: bool) -> tuple[str, int | str | None]:
    """``finish_reason`` and ``matched_stop`` of a reply that was not aborted."""
    if gen.finish_reason["type"] == "length":
        return "length", None
    if has_calls:
        return "tool_calls", None
    return "stop", gen.matched_stop


def output_text(
    state: ServerState,
    ids: Sequence[int],
    gen: Generation,
    req: ChatRequest,
    *,
    skip: bool,
    final: bool,
) -> str:
    trim_token = final and isinstance(gen.matched_stop, int) and not req.no_stop_trim
    text = state.tokenizer.decode(list(ids[:-1] if trim_token else ids), skip_special_tokens=skip)
    if final and isinstance(gen.matched_stop, str) and not req.no_stop_trim:
        cut = text.find(gen.matched_stop)
        text = text[:cut] if cut >= 0 else text
    return text


def usage(state: ServerState, gen: Generation, reasoning: str, req: ChatRequest) -> dict[str, Any]:
    reasoning_tokens = len(state.encoder.encode(reasoning)) if reasoning else 0
    prompt = len(gen.prompt_ids)
    completion = len(gen.output_ids)
    return {
        "prompt_tokens": prompt,
        "total_tokens": prompt + completion,
        "completion_tokens": completion,
        "reasoning_tokens": reasoning_tokens,
        "prompt_tokens_details": (
            {"cached_tokens": gen.cached_tokens}
            if state.options.enable_cache_report or req.return_cached_tokens_details
            else None
        ),
        "completion_tokens_details": (
            {"reasoning_tokens": reasoning_tokens} if reasoning_tokens else None
        ),
    }


def meta_info(state: ServerState, gen: Generation, rid: str, started: float) -> dict[str, Any]:
    """The raw engine meta (``/generate``'s ``meta_info``) for ``return_meta_info``."""
    return {
        "id": rid,
        "finish_reason": gen.finish_reason,
        "prompt_tokens": len(gen.prompt_ids),
        "completion_tokens": len(gen.output_ids),
        "cached_tokens": gen.cached_tokens,
        "weight_version": state.weight_version,
        "e2e_latency": round(time.perf_counter() - started, 6),
        **gen.spec_meta(state.engine.accept_length),
    }


def sglext(state: ServerState, gen: Generation, req: ChatRequest) -> dict[str, Any] | None:
    """SGLang's response-level extension block (``sglext``), when any part was asked for."""
    ext: dict[str, Any] = {}
    if req.return_spec_tokens_details:
        ext["spec_tokens_details"] = gen.spec_meta(state.engine.accept_length) or None
    if req.return_input_ids_in_sglext:
        ext["input_ids"] = gen.prompt_ids
    if req.return_output_ids_in_sglext:
        ext["output_ids"] = gen.output_ids
    return ext or None


def logprobs(state: ServerState, gen: Generation) -> dict[str, Any]:
    items = []
    for token, logprob in zip(gen.stop_token_trimmed_ids, gen.logprobs, strict=False):
        text = state.tokenizer.decode([token])
        items.append(
            {"token": text, "bytes": list(text.encode()), "logprob": logprob, "top_logprobs": []}
        )
    return {"content": items}
