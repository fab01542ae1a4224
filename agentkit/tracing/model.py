"""``InstrumentedModel``: any agentkit ``Model`` whose sessions put a span around each call."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from agentkit.models.base import (
    DeltaCallback,
    Model,
    ModelError,
    ModelRequest,
    ModelResponse,
    ModelSession,
)

from . import attributes as a


class InstrumentedModel:
    """Wraps a model: same name, mode and behaviour; each ``generate`` of its sessions is a
    ``chat`` (chat mode) or ``text_completion`` (token mode) span with the request's settings,
    token usage and finish reason. Other attributes are the wrapped model's."""

    def __init__(self, model: Model, tracer: Tracer, *, provider: str = "sglang") -> None:
        self.wrapped = model
        self.tracer = tracer
        self.provider = provider
        self.name = model.name
        self.mode = model.mode

    def __getattr__(self, item: str) -> Any:
        return getattr(self.wrapped, item)

    def session(self, *, routing_key: str | None = None) -> InstrumentedSession:
        return InstrumentedSession(self, self.wrapped.session(routing_key=routing_key))

    async def aclose(self) -> None:
        await self.wrapped.aclose()


class InstrumentedSession:
    def __init__(self, model: InstrumentedModel, session: ModelSession) -> None:
        self.model = model
        self.wrapped = session

    def __getattr__(self, item: str) -> Any:
        return getattr(self.wrapped, item)

    async def generate(
        self, request: ModelRequest, *, on_delta: DeltaCallback | None = None
    ) -> ModelResponse:
        model = self.model
        operation = a.TEXT_COMPLETION if model.mode == "tokens" else a.CHAT
        with model.tracer.start_as_current_span(
            f"{operation} {model.name}",
            kind=SpanKind.CLIENT,
            attributes=request_attributes(
                model, operation, request, streaming=on_delta is not None
            ),
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                response: ModelResponse = await self.wrapped.generate(request, on_delta=on_delta)
            except ModelError as exc:
                span.set_attribute(a.ERROR_TYPE, _cause(exc))
                span.set_attribute(a.ATTEMPTS, len(exc.attempts))
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                raise
            except BaseException as exc:
                span.set_attribute(a.ERROR_TYPE, type(exc).__name__)
                span.set_status(Status(StatusCode.ERROR, str(exc) or type(exc).__name__))
                raise
            span.set_attributes(response_attributes(response))
            return response


def request_attributes(
    model: InstrumentedModel, operation: str, request: ModelRequest, *, streaming: bool
) -> dict[str, Any]:
    settings = request.settings
    values: dict[str, Any] = {
        a.OPERATION_NAME: operation,
        a.PROVIDER_NAME: model.provider,
        a.REQUEST_MODEL: model.name,
        a.REQUEST_MAX_TOKENS: settings.max_tokens,
        a.REQUEST_TEMPERATURE: settings.temperature,
        a.REQUEST_TOP_P: settings.top_p,
        a.REQUEST_TOP_K: settings.top_k,
        a.REQUEST_SEED: settings.seed,
        a.REQUEST_STREAM: streaming,
        a.CONVERSATION_ID: request.episode_id or None,
        a.TURN: request.turn,
        a.MODE: model.mode,
    }
    return {k: v for k, v in values.items() if v is not None}


def response_attributes(response: ModelResponse) -> dict[str, Any]:
    record = response.record
    values: dict[str, Any] = {
        a.RESPONSE_FINISH_REASONS: [response.finish_reason],
        a.USAGE_INPUT_TOKENS: record.prompt_tokens,
        a.USAGE_OUTPUT_TOKENS: record.completion_tokens,
        a.USAGE_CACHE_READ_INPUT_TOKENS: record.cached_tokens,
        a.ATTEMPTS: len(record.attempts) or 1,
    }
    if record.server:
        parts = urlsplit(record.server if "//" in record.server else f"//{record.server}")
        values[a.SERVER_ADDRESS] = parts.hostname
        values[a.SERVER_PORT] = parts.port
    return {k: v for k, v in values.items() if v is not None}


def _cause(exc: ModelError) -> str:
    for attempt in reversed(exc.attempts):
        cause = getattr(attempt, "cause", None)
        if cause:
            return str(getattr(cause, "value", cause))
    return type(exc).__name__
