"""The model protocol: one small interface every backend implements.

A :class:`Model` hands out one :class:`ModelSession` per conversation. The session sees the whole
message list on each call and decides what to send: chat mode sends it all (the server renders),
token mode appends only the new messages' tokens to the ids it already holds (append-only context,
so the prefix cache hits and RL sees exactly the tokens the model saw).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agentkit.messages import AssistantMessage, Message, SharedFieldsSet, SharesFieldsSet
from agentkit.trajectory.records import Attempt, AttemptCause, ModelCallRecord


class ModelSettings(BaseModel):
    """Sampling settings. ``None`` leaves the server's default. Invalid values raise a
    ``ValueError`` (pydantic's ``ValidationError``) where the settings are built."""

    model_config = ConfigDict(frozen=True)

    max_tokens: int = Field(4096, ge=1)
    temperature: float | None = Field(None, ge=0.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    top_k: int | None = None
    seed: int | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("extra")
    @classmethod
    def _extra_is_json(cls, value: dict[str, Any]) -> dict[str, Any]:
        # checked here, where the settings are built: the request encoders (orjson or the
        # standard library) must never be the ones deciding what a NaN or a datetime becomes
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"extra must be plain JSON with finite numbers: {exc}") from exc
        return value

    @field_validator("top_k")
    @classmethod
    def _top_k(cls, value: int | None) -> int | None:
        if value is not None and value != -1 and value < 1:
            raise ValueError("top_k must be -1 (off) or at least 1")
        return value

    def merged(self, other: ModelSettings | None) -> ModelSettings:
        if other is None:
            return self
        data = self.model_dump()
        data.update(other.model_dump(exclude_unset=True))
        return ModelSettings(**data)


class ModelRequest(SharesFieldsSet):
    messages: list[Message]
    tools: list[dict[str, Any]] = Field(default_factory=list)
    tool_choice: str | dict[str, Any] = "auto"
    thinking: bool = True
    settings: ModelSettings = Field(default_factory=ModelSettings)
    episode_id: str = ""
    turn: int = 0
    call_index: int = 0

    @classmethod
    def of(
        cls,
        messages: list[Message],
        tools: list[dict[str, Any]],
        tool_choice: str | dict[str, Any],
        thinking: bool,
        settings: ModelSettings,
        episode_id: str,
        turn: int,
        call_index: int,
    ) -> ModelRequest:
        """The loop's request, every field given and already typed: what
        ``model_construct`` with all of them builds (same ``__dict__`` in field order, every
        field set), without its per-field lookups (aliases, defaults) on each turn."""
        request = cls.__new__(cls)
        object.__setattr__(
            request,
            "__dict__",
            {
                "messages": messages,
                "tools": tools,
                "tool_choice": tool_choice,
                "thinking": thinking,
                "settings": settings,
                "episode_id": episode_id,
                "turn": turn,
                "call_index": call_index,
            },
        )
        # every field set: one shared set (an assignment gives the request its own first)
        object.__setattr__(request, "__pydantic_fields_set__", _EVERY_REQUEST_FIELD)
        object.__setattr__(request, "__pydantic_extra__", None)
        object.__setattr__(request, "__pydantic_private__", None)
        return request


_REQUEST_FIELDS = tuple(ModelRequest.model_fields)
_EVERY_REQUEST_FIELD = SharedFieldsSet(_REQUEST_FIELDS)


class ModelResponse(BaseModel):
    """What the loop needs from one call: the assistant message plus the full call record."""

    message: AssistantMessage
    finish_reason: str
    problems: list[str] = Field(default_factory=list)
    malformed_calls: list[str] = Field(default_factory=list)
    record: ModelCallRecord


class ModelError(Exception):
    """A model call failed after every retry; ``attempts`` says what each try saw.

    ``cause`` is the typed reason of the last failure; ``record`` the failed call's record (set
    by the session that made the call), which the loop writes to the trajectory.
    """

    def __init__(
        self,
        message: str,
        attempts: Sequence[Attempt] = (),
        *,
        can_fail_over: bool = True,
        cause: AttemptCause | None = None,
    ) -> None:
        super().__init__(message)
        self.attempts = list(attempts)
        # False when another server would not help (the request itself was rejected).
        self.can_fail_over = can_fail_over
        failed = [a.cause for a in self.attempts if a.cause is not None]
        self.cause = cause or (failed[-1] if failed else AttemptCause.CLIENT_ERROR)
        self.record: ModelCallRecord | None = None


class StreamDeltaKind:
    REASONING = "reasoning"
    CONTENT = "content"
    TOOL_CALL_START = "tool_call_start"
    TOOL_CALL_ARGUMENTS = "tool_call_arguments"
    RETRY = "retry"


class ModelDelta(BaseModel):
    """A piece of a streamed reply, or a retry notice. A retry notice whose attempt is
    ``partial`` tells the consumer to discard what it received of this turn so far."""

    kind: str
    text: str = ""
    index: int | None = None
    name: str | None = None
    attempt: Attempt | None = None


DeltaCallback = Callable[[ModelDelta], Awaitable[None]]


@runtime_checkable
class ModelSession(Protocol):
    async def generate(
        self, request: ModelRequest, *, on_delta: DeltaCallback | None = None
    ) -> ModelResponse: ...


@runtime_checkable
class Model(Protocol):
    """A model backend: a name, a mode, sessions, and a close."""

    name: str
    mode: str

    def session(self, *, routing_key: str | None = None) -> ModelSession: ...

    async def aclose(self) -> None: ...
