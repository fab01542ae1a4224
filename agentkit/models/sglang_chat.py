"""Chat mode: SGLang's OpenAI-compatible ``/v1/chat/completions`` with the glm45 parsers.

The server renders the template and parses tool calls; this client sends the whole conversation
each call and sends assistant messages back with ``reasoning_content`` and ``tool_calls`` exactly
as the server returned them. Chat mode gives no token ids: records say so (``token_exact`` false).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Literal, NamedTuple

from agentkit.messages import AssistantMessage, ToolCall, new_call_id, to_openai
from agentkit.models.base import (
    DeltaCallback,
    ModelDelta,
    ModelRequest,
    ModelResponse,
    ModelSettings,
    StreamDeltaKind,
)
from agentkit.models.transport import RetryPolicy, Transport
from agentkit.models.urls import ServerPool
from agentkit.trajectory.records import Attempt, ModelCallRecord


class SGLangChat:
    """A chat-mode backend. ``base_url`` is one server or a list (see :class:`ServerPool`)."""

    mode = "chat"

    def __init__(
        self,
        base_url: str | list[str],
        *,
        model: str = "default",
        settings: ModelSettings | None = None,
        retry: RetryPolicy | None = None,
        transport: Transport | None = None,
        separate_reasoning: bool = True,
        extra_body: dict[str, Any] | None = None,
        max_concurrency_per_server: int | None = None,
        speculative_stats: bool = True,
        client_parser: Literal["hermes", "glm45"] | None = None,
    ) -> None:
        self.name = model
        self.servers = ServerPool(base_url, max_concurrency_per_server=max_concurrency_per_server)
        self.settings = settings or ModelSettings()
        self.transport = transport or Transport(retry)
        self.separate_reasoning = separate_reasoning
        self.extra_body = dict(extra_body or {})
        # SGLang >= 0.5.23 reports EAGLE/MTP verify counts only when asked; older servers
        # ignore the unknown field. Turn off for servers that reject unknown fields.
        self.speculative_stats = speculative_stats
        # For OpenAI-compatible servers started without a tool-call parser (vLLM, llama.cpp,
        # Ollama): tool-call markup left in ``content`` is parsed here with this dialect.
        self.client_parser = client_parser

    def session(self, *, routing_key: str | None = None) -> ChatSession:
        return ChatSession(self, routing_key or uuid.uuid4().hex)

    async def aclose(self) -> None:
        await self.transport.aclose()


class ChatSession:
    def __init__(self, model: SGLangChat, routing_key: str) -> None:
        self.model = model
        self.routing_key = routing_key

    def _body(self, request: ModelRequest, stream: bool) -> dict[str, Any]:
        settings = self.model.settings
        if request.settings.model_fields_set:  # merging nothing would rebuild the same settings
            settings = settings.merged(request.settings)
        body: dict[str, Any] = {
            "model": self.model.name,
            "messages": to_openai(request.messages),
            "max_tokens": settings.max_tokens,
            "chat_template_kwargs": {"enable_thinking": request.thinking},
            "separate_reasoning": self.model.separate_reasoning,
            "stream": stream,
        }
        if request.tools:
            body["tools"] = request.tools
            body["tool_choice"] = request.tool_choice
        for key in ("temperature", "top_p", "top_k", "seed"):
            value = getattr(settings, key)
            if value is not None:
                body[key] = value
        if stream:
            body["stream_options"] = {"include_usage": True}
        if self.model.speculative_stats:
            body["return_spec_tokens_details"] = True
        body.update(self.model.extra_body)
        body.update(settings.extra)
        return body

    async def generate(
        self, request: ModelRequest, *, on_delta: DeltaCallback | None = None
    ) -> ModelResponse:
        stream = on_delta is not None
        body = self._body(request, stream)
        attempts: list[Attempt] = []
        started = time.time()
        t0 = time.perf_counter()

        async def notify(attempt: Attempt) -> None:
            if on_delta is not None:
                await on_delta(ModelDelta(kind=StreamDeltaKind.RETRY, attempt=attempt))

        async def on_server(server: str) -> _Reply:
            url = f"{server}/v1/chat/completions"
            if on_delta is not None:
                return await self._stream(url, body, attempts, on_delta)
            data = await self.model.transport.post_json(
                url, body, attempts=attempts, on_attempt=notify
            )
            choice = (data.get("choices") or [{}])[0]
            return _Reply(
                choice.get("message") or {},
                data.get("usage") or {},
                choice.get("finish_reason") or "stop",
                choice.get("matched_stop"),
                _spec_verify_ct(choice.get("meta_info"), data.get("sglext")),
            )

        reply, server = await self.model.servers.call(self.routing_key, on_server)
        message, usage, finish, matched, spec = reply
        calls, problems = _tool_calls(message.get("tool_calls") or [])
        content = message.get("content") or ""
        reasoning = message.get("reasoning_content")
        if self.model.client_parser and not calls and "<tool_call>" in content:
            content, reasoning, calls, problems = _parse_client_side(
                self.model.client_parser, content, reasoning, request.tools, problems
            )
            if calls and finish == "stop":
                finish = "tool_calls"
        if not content and not calls and reasoning and finish != "length":
            problems.append(
                "empty_content: the reply had reasoning but no answer (server parser artifact)"
            )
        assistant = AssistantMessage(content=content, reasoning_content=reasoning, tool_calls=calls)
        details = usage.get("prompt_tokens_details") or {}
        record = ModelCallRecord(
            episode_id=request.episode_id,
            index=request.call_index,
            turn=request.turn,
            mode="chat",
            server=server,
            started_at=started,
            elapsed_s=time.perf_counter() - t0,
            output_text=content,
            sampling_params={k: v for k, v in body.items() if k not in ("messages", "tools")},
            finish_reason=finish,
            matched_stop=matched,
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            cached_tokens=details.get("cached_tokens") if isinstance(details, dict) else None,
            spec_verify_ct=spec,
            accept_length=(
                usage["completion_tokens"] / spec
                if spec and usage.get("completion_tokens")
                else None
            ),
            reasoning=reasoning,
            content=content,
            tool_calls=calls,
            problems=problems,
            attempts=attempts,
        )
        return ModelResponse(
            message=assistant, finish_reason=finish, problems=problems, record=record
        )

    async def _stream(
        self,
        url: str,
        body: dict[str, Any],
        attempts: list[Attempt],
        on_delta: DeltaCallback,
    ) -> _Reply:
        content: list[str] = []
        spec: int | None = None
        reasoning: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        finish = "stop"
        matched: Any = None
        usage: dict[str, Any] = {}

        async def notify(attempt: Attempt) -> None:
            await on_delta(ModelDelta(kind=StreamDeltaKind.RETRY, attempt=attempt))

        async for chunk in self.model.transport.stream_sse(
            url, body, attempts=attempts, on_attempt=notify
        ):
            if "error" in chunk and not chunk.get("choices"):
                raise RuntimeError(f"server error in stream: {chunk['error']}")
            if chunk.get("usage"):
                usage = chunk["usage"]
            if chunk.get("sglext"):
                spec = _spec_verify_ct(None, chunk["sglext"]) or spec
            for choice in chunk.get("choices") or []:
                delta = choice.get("delta") or {}
                if delta.get("reasoning_content"):
                    reasoning.append(delta["reasoning_content"])
                    await on_delta(
                        ModelDelta(kind=StreamDeltaKind.REASONING, text=delta["reasoning_content"])
                    )
                if delta.get("content"):
                    content.append(delta["content"])
                    await on_delta(ModelDelta(kind=StreamDeltaKind.CONTENT, text=delta["content"]))
                for tc in delta.get("tool_calls") or []:
                    index = int(tc.get("index", 0))
                    slot = calls.setdefault(index, {"id": None, "name": "", "arguments": ""})
                    fn = tc.get("function") or {}
                    if tc.get("id"):
                        slot["id"] = tc["id"]
                    if fn.get("name"):
                        slot["name"] = fn["name"]
                        await on_delta(
                            ModelDelta(
                                kind=StreamDeltaKind.TOOL_CALL_START, index=index, name=fn["name"]
                            )
                        )
                    if fn.get("arguments"):
                        slot["arguments"] += fn["arguments"]
                        await on_delta(
                            ModelDelta(
                                kind=StreamDeltaKind.TOOL_CALL_ARGUMENTS,
                                index=index,
                                text=fn["arguments"],
                            )
                        )
                if choice.get("meta_info"):
                    spec = _spec_verify_ct(choice["meta_info"], None) or spec
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]
                    matched = choice.get("matched_stop")
        message: dict[str, Any] = {
            "content": "".join(content),
            "reasoning_content": "".join(reasoning) or None,
            "tool_calls": [
                {
                    "id": slot["id"],
                    "type": "function",
                    "function": {"name": slot["name"], "arguments": slot["arguments"] or "{}"},
                }
                for _, slot in sorted(calls.items())
            ],
        }
        return _Reply(message, usage, finish, matched, spec)


def _tool_calls(raw_calls: list[dict[str, Any]]) -> tuple[list[ToolCall], list[str]]:
    calls: list[ToolCall] = []
    problems: list[str] = []
    for raw in raw_calls:
        fn = raw.get("function") or {}
        text = fn.get("arguments")
        arguments: dict[str, Any] = {}
        if isinstance(text, dict):
            arguments, text = text, json.dumps(text, ensure_ascii=False)
        elif isinstance(text, str) and text.strip():
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                problems.append(f"malformed_arguments: {fn.get('name')}: {exc}")
                value = None
            if isinstance(value, dict):
                arguments = value
            elif value is not None:
                problems.append(f"malformed_arguments: {fn.get('name')}: not a JSON object")
        calls.append(
            ToolCall(
                id=raw.get("id") or new_call_id(),
                name=str(fn.get("name") or ""),
                arguments=arguments,
                raw_arguments=text if isinstance(text, str) else None,
            )
        )
    return calls, problems


def _spec_verify_ct(meta_info: Any, sglext: Any) -> int | None:
    """``spec_verify_ct`` from ``choices[].meta_info`` (``return_meta_info``) or
    ``sglext.spec_tokens_details`` (``return_spec_tokens_details``), where the server sent it."""
    details = sglext.get("spec_tokens_details") if isinstance(sglext, dict) else None
    for holder in (meta_info, details):
        if isinstance(holder, dict):
            value = holder.get("spec_verify_ct")
            if isinstance(value, int) and value > 0:
                return value
    return None


class _Reply(NamedTuple):
    message: dict[str, Any]
    usage: dict[str, Any]
    finish: str
    matched: Any
    spec_verify_ct: int | None


def _parse_client_side(
    dialect: str,
    content: str,
    reasoning: str | None,
    tools: list[dict[str, Any]],
    problems: list[str],
) -> tuple[str, str | None, list[ToolCall], list[str]]:
    if dialect == "hermes":
        from agentkit.dialects import hermes

        parsed = hermes.parse(content, tools or None)
    else:
        from agentkit.dialects import glm45

        parsed = glm45.parse(content, tools or None, thinking=False)
    calls = [ToolCall(name=c.name, arguments=dict(c.arguments)) for c in parsed.tool_calls]
    found = [f"{p.kind}: {p.message}" for p in parsed.problems]
    return parsed.content, parsed.reasoning or reasoning, calls, problems + found
