"""``POST /v1/chat/completions`` as SGLang serves GLM-4.5 (``--tool-call-parser glm45
--reasoning-parser glm45``).

The messages are rendered with the GLM-4.5 template and tokenised; the policy writes the raw
completion; the engine appends the stop token and applies ``max_tokens``; the output is parsed
with the glm45 dialect into reasoning, content and tool calls, whole or as a stream of deltas.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Sequence
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentkit.dialects.glm45 import (
    ContentDelta,
    ReasoningDelta,
    StreamParser,
    ToolCallArgumentsDelta,
    ToolCallEnd,
    ToolCallStart,
    render,
)

from .engine import Generation
from .policy import PolicyRequest
from .sse import common_prefix_length, open_sse, send_done, send_event
from .state import RequestRecord, ServerState, error_response, json_response

__all__ = ["handle_chat_completions"]

_THINK_OPEN = "<think>"
_THINK_CLOSE = "</think>"


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    messages: list[dict[str, Any]] = Field(min_length=1)
    model: str = "default"
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    chat_template_kwargs: dict[str, Any] | None = None
    reasoning_effort: str | None = None
    separate_reasoning: bool = True
    stream_reasoning: bool = True
    skip_special_tokens: bool = True
    no_stop_trim: bool = False
    ignore_eos: bool = False
    stop: str | list[str] | None = None
    stop_token_ids: list[int] | None = None
    n: int = 1
    logprobs: bool = False
    rid: str | None = None
    return_token_ids: bool = False
    return_meta_info: bool = False
    return_spec_tokens_details: bool = False
    return_cached_tokens_details: bool = False
    return_input_ids_in_sglext: bool = False
    return_output_ids_in_sglext: bool = False


class _BadRequest(ValueError):
    pass


def _text_of(content: Any, joiner: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for item in content:
            if isinstance(item, str):
                parts.append(item)
            elif isinstance(item, dict) and item.get("type") == "text":
                parts.append(str(item.get("text", "")))
        return joiner.join(parts)
    return str(content)


def _normalize_messages(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages as SGLang hands them to the template: text content, argument mappings."""
    out = []
    for message in raw:
        role = message.get("role")
        if role not in {"system", "developer", "user", "assistant", "tool", "function"}:
            raise _BadRequest(f"unknown message role: {role!r}")
        item = dict(message)
        item["content"] = _text_of(message.get("content"), " " if role == "tool" else "")
        calls = message.get("tool_calls")
        if role == "assistant" and calls:
            item["tool_calls"] = [_normalize_call(call) for call in calls]
        out.append(item)
    return out


def _normalize_call(call: Any) -> dict[str, Any]:
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        raise _BadRequest("assistant tool_calls entries need a 'function' object")
    function = dict(call["function"])
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as exc:
            raise _BadRequest("Assistant tool call function.arguments must be valid JSON.") from exc
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise _BadRequest("Assistant tool call function.arguments must be a JSON object.")
    function["arguments"] = arguments
    return {**call, "function": function}


def _prompt_tools(req: ChatRequest) -> list[dict[str, Any]]:
    if not req.tools or req.tool_choice == "none":
        return []
    if isinstance(req.tool_choice, dict):
        wanted = (req.tool_choice.get("function") or {}).get("name")
        chosen = [t for t in req.tools if (t.get("function") or {}).get("name") == wanted]
        if not chosen:
            raise _BadRequest(f"tool_choice names an unknown function: {wanted!r}")
        return chosen
    return list(req.tools)


def _enable_thinking(req: ChatRequest) -> bool:
    kwargs = dict(req.chat_template_kwargs or {})
    if req.reasoning_effort == "none":
        kwargs.setdefault("enable_thinking", False)
    return kwargs.get("enable_thinking", True) is not False


def _call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


Delta = ReasoningDelta | ContentDelta | ToolCallStart | ToolCallArgumentsDelta | ToolCallEnd


class _NoToolsSplitter:
    """Reasoning/content split for requests without tools: tool markup stays content (as in
    SGLang, which runs no tool parser then), reasoning and stripping follow the glm45 dialect."""

    def __init__(self, *, thinking: bool) -> None:
        self._mode = "start" if thinking else "content"
        self._buf = ""
        self._content_started = False
        self._pending_ws = ""

    def feed(self, chunk: str) -> list[Delta]:
        self._buf += chunk
        return self._drain(final=False)

    def close(self) -> list[Delta]:
        return self._drain(final=True)

    def _drain(self, *, final: bool) -> list[Delta]:
        out: list[Delta] = []
        if self._mode == "start":
            stripped = self._buf.lstrip()
            if not final and (not stripped or _THINK_OPEN.startswith(stripped)):
                return out  # could still be the opening <think>
            if stripped.startswith(_THINK_OPEN):
                self._buf = stripped[len(_THINK_OPEN) :]
                self._mode = "reasoning"
            else:
                self._mode = "content"
        if self._mode == "reasoning":
            end = self._buf.find(_THINK_CLOSE)
            if end < 0:
                keep = 0 if final else _partial_suffix(self._buf, _THINK_CLOSE)
                emit, self._buf = (
                    self._buf[: len(self._buf) - keep],
                    self._buf[len(self._buf) - keep :],
                )
                if emit:
                    out.append(ReasoningDelta(emit))
                return out
            if end:
                out.append(ReasoningDelta(self._buf[:end]))
            self._buf = self._buf[end + len(_THINK_CLOSE) :]
            self._mode = "content"
        text, self._buf = self._buf, ""
        if not self._content_started:
            text = text.lstrip()
            self._content_started = bool(text)
        if text:
            body = text.rstrip()
            piece = self._pending_ws + body if body else ""
            self._pending_ws = (self._pending_ws if not body else "") + text[len(body) :]
            if piece:
                out.append(ContentDelta(piece))
        return out


def _partial_suffix(text: str, marker: str) -> int:
    for size in range(min(len(marker) - 1, len(text)), 0, -1):
        if text.endswith(marker[:size]):
            return size
    return 0


class _Parser:
    """Either the glm45 dialect's stream parser (tools sent) or the reasoning-only splitter."""

    def __init__(
        self, tools: list[dict[str, Any]], *, thinking: bool, separate_reasoning: bool
    ) -> None:
        self.tools_active = bool(tools)
        self._separate = separate_reasoning
        self._dialect: StreamParser | None = None
        self._splitter: _NoToolsSplitter | None = None
        if self.tools_active:
            self._dialect = StreamParser(tools, thinking=thinking and separate_reasoning)
        else:
            self._splitter = _NoToolsSplitter(thinking=thinking and separate_reasoning)

        self._in_reasoning = False

    def feed(self, text: str) -> list[Delta]:
        if self._dialect is not None:
            return self._unseparated(self._dialect.feed(text))
        assert self._splitter is not None
        return self._splitter.feed(text)

    def close(self) -> list[Delta]:
        if self._dialect is not None:
            return self._unseparated(self._dialect.close())
        assert self._splitter is not None
        return self._splitter.close()

    def _unseparated(self, deltas: list[Delta]) -> list[Delta]:
        """With ``separate_reasoning: false`` the reasoning stays in the content, tags included."""
        if self._separate:
            return deltas
        out: list[Delta] = []
        for delta in deltas:
            if isinstance(delta, ReasoningDelta):
                opening = "" if self._in_reasoning else _THINK_OPEN
                self._in_reasoning = True
                out.append(ContentDelta(opening + delta.text))
                continue
            if self._in_reasoning:
                self._in_reasoning = False
                out.append(ContentDelta(_THINK_CLOSE + "\n"))
            out.append(delta)
        return out


class _Answer:
    """The parsed assistant message accumulated from deltas (stream and non-stream alike)."""

    def __init__(self) -> None:
        self.reasoning: list[str] = []
        self.content: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}

    def add(self, delta: Delta) -> None:
        if isinstance(delta, ReasoningDelta):
            self.reasoning.append(delta.text)
        elif isinstance(delta, ContentDelta):
            self.content.append(delta.text)
        elif isinstance(delta, ToolCallEnd):
            self.calls[delta.index] = {
                "id": _call_id(),
                "index": len(self.calls),
                "type": "function",
                "function": {"name": delta.call.name, "arguments": delta.call.arguments_json()},
            }


def _finish(gen: Generation, has_calls: bool) -> tuple[str, int | str | None]:
    if gen.finish_reason["type"] == "length":
        return "length", None
    if has_calls:
        return "tool_calls", None
    return "stop", gen.matched_stop


def _output_text(
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


def _usage(state: ServerState, gen: Generation, reasoning: str, req: ChatRequest) -> dict[str, Any]:
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


def _meta_info(state: ServerState, gen: Generation, rid: str, started: float) -> dict[str, Any]:
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


def _sglext(state: ServerState, gen: Generation, req: ChatRequest) -> dict[str, Any] | None:
    """SGLang's response-level extension block (``sglext``), when any part was asked for."""
    ext: dict[str, Any] = {}
    if req.return_spec_tokens_details:
        ext["spec_tokens_details"] = gen.spec_meta(state.engine.accept_length) or None
    if req.return_input_ids_in_sglext:
        ext["input_ids"] = gen.prompt_ids
    if req.return_output_ids_in_sglext:
        ext["output_ids"] = gen.output_ids
    return ext or None


def _logprobs(state: ServerState, gen: Generation) -> dict[str, Any]:
    items = []
    for token, logprob in zip(gen.stop_token_trimmed_ids, gen.logprobs, strict=False):
        text = state.tokenizer.decode([token])
        items.append(
            {"token": text, "bytes": list(text.encode()), "logprob": logprob, "top_logprobs": []}
        )
    return {"content": items}


async def handle_chat_completions(
    state: ServerState, request: web.Request, record: RequestRecord
) -> web.StreamResponse:
    started = time.perf_counter()
    try:
        req = ChatRequest.model_validate(record.request)
        if req.n != 1:
            raise _BadRequest("the test server supports n=1 only")
        messages = _normalize_messages(req.messages)
        tools = _prompt_tools(req)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return error_response(f"invalid request: {where}: {first['msg']}", 400)
    except _BadRequest as exc:
        return error_response(str(exc), 400)
    thinking = _enable_thinking(req)
    try:
        prompt_text = render(messages, tools or None, enable_thinking=thinking)
    except Exception as exc:
        return error_response(f"chat template failed: {exc}", 400)
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
        return error_response(f"policy failed: {type(exc).__name__}: {exc}", 500)
    if state.options.latency_s:
        await asyncio.sleep(state.options.latency_s)
    max_new = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
    if max_new is None:
        max_new = max(0, state.options.context_length - len(prompt_ids))
    gen = state.engine.generate(
        prompt_ids,
        completion,
        max_new_tokens=max_new,
        stop_token_ids=req.stop_token_ids or (),
        stop_strings=[req.stop] if isinstance(req.stop, str) else list(req.stop or []),
        ignore_eos=req.ignore_eos,
    )
    skip = req.skip_special_tokens and not tools
    created = int(time.time())
    text = _output_text(state, gen.output_ids, gen, req, skip=skip, final=True)
    parser = _Parser(tools, thinking=thinking, separate_reasoning=req.separate_reasoning)

    if not req.stream:
        answer = _Answer()
        for delta in parser.feed(text) + parser.close():
            answer.add(delta)
        aborted = state.is_aborted(rid, epoch)
        finish, matched = ("abort", None) if aborted else _finish(gen, bool(answer.calls))
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
            "logprobs": _logprobs(state, gen) if req.logprobs else None,
            "finish_reason": finish,
            "matched_stop": matched,
        }
        if req.return_token_ids:
            choice["prompt_token_ids"] = gen.prompt_ids
            choice["response_token_ids"] = gen.output_ids
        if req.return_meta_info:
            choice["meta_info"] = _meta_info(state, gen, rid, started)
        payload = {
            "id": rid,
            "object": "chat.completion",
            "created": created,
            "model": req.model,
            "choices": [choice],
            "usage": _usage(state, gen, reasoning, req),
            "metadata": {"weight_version": state.weight_version},
        }
        ext = _sglext(state, gen, req)
        if ext is not None:
            payload["sglext"] = ext
        record.response = payload
        return json_response(payload)

    return await _stream(state, request, record, req, gen, parser, text, rid, epoch, created, skip)


def _chunk(
    rid: str,
    created: int,
    model: str,
    delta: dict[str, Any] | None,
    finish: str | None = None,
    matched: int | str | None = None,
) -> dict[str, Any]:
    if delta is None:
        delta = {"role": None, "content": None, "reasoning_content": None, "tool_calls": None}
    return {
        "id": rid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "delta": delta,
                "logprobs": None,
                "finish_reason": finish,
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


class _ChunkBuilder:
    """Turns dialect deltas into SGLang chunk deltas, merging neighbours of the same kind."""

    def __init__(self, *, stream_reasoning: bool) -> None:
        self._stream_reasoning = stream_reasoning
        self._held_reasoning: list[str] = []
        self.ids: dict[int, str] = {}
        self.answer = _Answer()

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
                self.ids[delta.index] = _call_id()
                out.append(
                    _delta(
                        tool_calls=[
                            {
                                "id": self.ids[delta.index],
                                "index": delta.index,
                                "type": "function",
                                "function": {"name": delta.name, "arguments": ""},
                            }
                        ]
                    )
                )
            elif isinstance(delta, ToolCallArgumentsDelta):
                previous = out[-1]["tool_calls"] if out else None
                if previous and previous[0]["index"] == delta.index and previous[0]["id"] is None:
                    previous[0]["function"]["arguments"] += delta.text
                else:
                    out.append(
                        _delta(
                            tool_calls=[
                                {
                                    "id": None,
                                    "index": delta.index,
                                    "type": "function",
                                    "function": {"name": None, "arguments": delta.text},
                                }
                            ]
                        )
                    )
        if final:
            out.extend(self._flush_reasoning())
        return out

    def _flush_reasoning(self) -> list[dict[str, Any]]:
        if not self._held_reasoning:
            return []
        text, self._held_reasoning = "".join(self._held_reasoning), []
        return [_delta(reasoning=text)]


async def _stream(
    state: ServerState,
    request: web.Request,
    record: RequestRecord,
    req: ChatRequest,
    gen: Generation,
    parser: _Parser,
    final_text: str,
    rid: str,
    epoch: int,
    created: int,
    skip: bool,
) -> web.StreamResponse:
    response = await open_sse(request)

    async def emit(payload: dict[str, Any]) -> None:
        record.chunks.append(payload)
        await send_event(response, payload)

    role = {"role": "assistant", "content": "", "reasoning_content": None}
    await emit(_chunk(rid, created, req.model, role))
    builder = _ChunkBuilder(stream_reasoning=req.stream_reasoning)
    per_chunk = state.options.stream_tokens_per_chunk
    sizes = [per_chunk] * len(gen.output_ids) if per_chunk else gen.steps
    sent_chars = 0
    count = 0
    aborted = False
    for size in sizes:
        if count >= len(gen.output_ids):
            break
        if state.is_aborted(rid, epoch):
            aborted = True
            break
        count = min(len(gen.output_ids), count + size)
        if count == len(gen.output_ids):
            visible = len(final_text)
        else:
            partial = _output_text(state, gen.output_ids[:count], gen, req, skip=skip, final=False)
            visible = common_prefix_length(partial, final_text)
        if visible > sent_chars:
            piece = final_text[sent_chars:visible]
            sent_chars = visible
            for delta in builder.build(parser.feed(piece), final=False):
                await emit(_chunk(rid, created, req.model, delta))
        if state.options.chunk_delay_s:
            await asyncio.sleep(state.options.chunk_delay_s)
    for delta in builder.build(parser.close(), final=True):
        await emit(_chunk(rid, created, req.model, delta))
    answer = builder.answer
    finish, matched = ("abort", None) if aborted else _finish(gen, bool(answer.calls))
    await emit(_chunk(rid, created, req.model, None, finish, matched))
    if (req.stream_options or {}).get("include_usage"):
        await emit(
            {
                "id": rid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": req.model,
                "choices": [],
                "usage": _usage(state, gen, "".join(answer.reasoning), req),
            }
        )
    ext = _sglext(state, gen, req)
    if ext is not None:
        await emit(
            {
                "id": rid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": req.model,
                "choices": [],
                "sglext": ext,
            }
        )
    await send_done(response)
    return response
