"""A streamed chat completion: SGLang's ``chat.completion.chunk`` events, one decoding step (or
``stream_tokens_per_chunk`` tokens) at a time, then the finish, usage and ``sglext`` chunks."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from agentkit.dialects.glm45 import (
    ContentDelta,
    ReasoningDelta,
    ToolCallArgumentsDelta,
    ToolCallStart,
)

from .chat_fields import ChatGeneration, finish, output_text, sglext, usage
from .chat_reply_parser import Answer, Delta, call_id
from .sse import common_prefix_length, open_sse, send_done, send_event
from .state import RequestRecord, ServerState

__all__ = ["stream_chat"]

Emit = Callable[[dict[str, Any]], Awaitable[None]]


def _chunk(
    turn: ChatGeneration,
    delta: dict[str, Any] | None,
    finish_reason: str | None = None,
    matched: int | str | None = None,
) -> dict[str, Any]:
    if delta is None:
        delta = {"role": None, "content": None, "reasoning_content": None, "tool_calls": None}
    return {
        "id": turn.rid,
        "object": "chat.completion.chunk",
        "created": turn.created,
        "model": turn.req.model,
        "choices": [
            {
                "index": 0,
                "delta": delta,
                "logprobs": None,
                "finish_reason": finish_reason,
                "matched_stop": matched,
            }
        ],
        "usage": None,
    }


def _delta(
    content: str | None = None,
    reasoning: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "role": None,
        "content": content,
        "reasoning_content": reasoning,
        "tool_calls": tool_calls,
    }


def _tool_call_delta(
    id_: str | None, index: int, name: str | None, arguments: str
) -> dict[str, Any]:
    return _delta(
        tool_calls=[
            {
                "id": id_,
                "index": index,
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }
        ]
    )


class ChunkBuilder:
    """Turns dialect deltas into SGLang chunk deltas, merging neighbours of the same kind."""

    def __init__(self, *, stream_reasoning: bool) -> None:
        self._stream_reasoning = stream_reasoning
        self._held_reasoning: list[str] = []
        self.ids: dict[int, str] = {}
        self.answer = Answer()

    def build(self, deltas: list[Delta], *, final: bool) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for delta in deltas:
            self.answer.add(delta)
            if isinstance(delta, ReasoningDelta):
                if not self._stream_reasoning:
                    self._held_reasoning.append(delta.text)
                elif out and out[-1]["reasoning_content"] is not None:
                    out[-1]["reasoning_content"] += delta.text
                else:
                    out.append(_delta(reasoning=delta.text))
                continue
            out.extend(self._flush_reasoning())
            if isinstance(delta, ContentDelta):
                if out and out[-1]["content"] is not None:
                    out[-1]["content"] += delta.text
                else:
                    out.append(_delta(content=delta.text))
            elif isinstance(delta, ToolCallStart):
                self.ids[delta.index] = call_id()
                out.append(_tool_call_delta(self.ids[delta.index], delta.index, delta.name, ""))
            elif isinstance(delta, ToolCallArgumentsDelta):
                previous = out[-1]["tool_calls"] if out else None
                if previous and previous[0]["index"] == delta.index and previous[0]["id"] is None:
                    previous[0]["function"]["arguments"] += delta.text
                else:
                    out.append(_tool_call_delta(None, delta.index, None, delta.text))
        if final:
            out.extend(self._flush_reasoning())
        return out

    def _flush_reasoning(self) -> list[dict[str, Any]]:
        if not self._held_reasoning:
            return []
        text, self._held_reasoning = "".join(self._held_reasoning), []
        return [_delta(reasoning=text)]


async def stream_chat(
    state: ServerState, request: web.Request, record: RequestRecord, turn: ChatGeneration
) -> web.StreamResponse:
    """Answer ``turn`` as a server-sent event stream, stopping early if the rid is aborted."""
    response = await open_sse(request)

    async def emit(payload: dict[str, Any]) -> None:
        record.chunks.append(payload)
        await send_event(response, payload)

    role = {"role": "assistant", "content": "", "reasoning_content": None}
    await emit(_chunk(turn, role))
    builder = ChunkBuilder(stream_reasoning=turn.req.stream_reasoning)
    aborted = await _stream_text(state, turn, builder, emit)
    for delta in builder.build(turn.parser.close(), final=True):
        await emit(_chunk(turn, delta))
    answer = builder.answer
    reason, matched = ("abort", None) if aborted else finish(turn.gen, bool(answer.calls))
    await emit(_chunk(turn, None, reason, matched))
    await _closing_chunks(state, turn, answer, emit)
    await send_done(response)
    return response


async def _stream_text(
    state: ServerState, turn: ChatGeneration, builder: ChunkBuilder, emit: Emit
) -> bool:
    """Stream the completion's text step by step; ``True`` if the request was aborted."""
    gen, req = turn.gen, turn.req
    per_chunk = state.options.stream_tokens_per_chunk
    sizes = [per_chunk] * len(gen.output_ids) if per_chunk else gen.steps
    sent_chars = 0
    count = 0
    for size in sizes:
        if count >= len(gen.output_ids):
            break
        if state.is_aborted(turn.rid, turn.epoch):
            return True
        count = min(len(gen.output_ids), count + size)
        if count == len(gen.output_ids):
            visible = len(turn.text)
        else:
            partial = output_text(
                state, gen.output_ids[:count], gen, req, skip=turn.skip_special, final=False
            )
            visible = common_prefix_length(partial, turn.text)
        if visible > sent_chars:
            piece = turn.text[sent_chars:visible]
            sent_chars = visible
            for delta in builder.build(turn.parser.feed(piece), final=False):
                await emit(_chunk(turn, delta))
        if state.options.chunk_delay_s:
            await asyncio.sleep(state.options.chunk_delay_s)
    return False


async def _closing_chunks(
    state: ServerState, turn: ChatGeneration, answer: Answer, emit: Emit
) -> None:
    """The usage chunk (``stream_options.include_usage``) and the ``sglext`` chunk, if asked."""
    req = turn.req
    head = {"id": turn.rid, "object": "chat.completion.chunk", "created": turn.created}
    if (req.stream_options or {}).get("include_usage"):
        await emit(
            {
                **head,
                "model": req.model,
                "choices": [],
                "usage": usage(state, turn.gen, "".join(answer.reasoning), req),
            }
        )
    ext = sglext(state, turn.gen, req)
    if ext is not None:
        await emit({**head, "model": req.model, "choices": [], "sglext": ext})
