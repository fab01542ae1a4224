"""Fault injection for the test server: the ways a model server fails, on demand.

``server.inject(Fault(FaultKind.TRUNCATED_STREAM))`` makes the next generation request
(``/generate`` or ``/v1/chat/completions``) fail that way; ``times=None`` makes every request
fail until :meth:`~agentkit.testing.SGLangTestServer.clear_faults`. Faults apply in the order
injected. What each kind does, for a non-streamed / streamed request:

- ``http_error``: answer ``status`` (default 503) with an error body / same.
- ``rate_limited``: answer 429 with ``Retry-After: retry_after_s`` / same.
- ``connection_reset``: close the connection without answering / after ``after_events`` events.
- ``hang``: answer nothing for ``hang_s`` (the client must time out) / after ``after_events``.
- ``invalid_json``: a 200 body that is not JSON / a ``data:`` frame that is not JSON.
- ``wrong_shape``: a 200 JSON object without the protocol's fields / events without them.
- ``truncated_stream``: a body cut short (connection closed) / the stream ends without
  ``[DONE]`` after ``after_events`` events.
- ``error_event``: a 200 body ``{"error": ...}`` / an SSE ``{"error": ...}`` event then
  ``[DONE]``, as SGLang sends when generation fails.
- ``malformed_tool_call``: the model's tool call is broken: in chat mode its
  ``function.arguments`` is not valid JSON (Python-style quotes); on ``/generate`` the
  ``</tool_call>`` is missing. The reply is otherwise valid: this is the model's mistake.
- ``server_death``: the connection is cut and the server stops listening (established
  connections are closed too); it listens again after ``revive_after_s`` (``None``: never).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from .policy import Completion

__all__ = ["FAULT_KEY", "Fault", "FaultKind", "FaultPlan", "break_arguments", "malform_completion"]

FAULT_KEY = "agentkit.testing.fault"


class FaultKind(StrEnum):
    HTTP_ERROR = "http_error"
    RATE_LIMITED = "rate_limited"
    CONNECTION_RESET = "connection_reset"
    HANG = "hang"
    INVALID_JSON = "invalid_json"
    WRONG_SHAPE = "wrong_shape"
    TRUNCATED_STREAM = "truncated_stream"
    ERROR_EVENT = "error_event"
    MALFORMED_TOOL_CALL = "malformed_tool_call"
    SERVER_DEATH = "server_death"


@dataclass(frozen=True)
class Fault:
    """One fault; ``times`` requests get it (``None``: every request until cleared)."""

    kind: FaultKind
    times: int | None = 1
    status: int = 503
    retry_after_s: float = 1.0
    hang_s: float = 3600.0
    after_events: int = 2
    revive_after_s: float | None = 0.2

    def __post_init__(self) -> None:
        if self.times is not None and self.times < 1:
            raise ValueError("times must be at least 1 (or None for always)")
        if self.after_events < 0:
            raise ValueError("after_events must be >= 0")


class FaultPlan:
    """Faults waiting for requests, thread-safe (the server runs in its own thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[Fault] = []
        self.injected: list[Fault] = []  # what each faulted request got, in order

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._pending.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()

    def take(self) -> Fault | None:
        with self._lock:
            if not self._pending:
                return None
            fault = self._pending[0]
            if fault.times is not None:
                if fault.times == 1:
                    self._pending.pop(0)
                else:
                    self._pending[0] = replace(fault, times=fault.times - 1)
            self.injected.append(fault)
            return fault

    def __iter__(self) -> Iterator[Fault]:
        with self._lock:
            return iter(list(self._pending))


def break_arguments(arguments: str) -> str:
    """Tool-call arguments as a model might botch them: Python quotes, so not valid JSON."""
    broken = arguments.replace('"', "'")
    return broken if broken != arguments else arguments + ","


def malform_tool_calls(payload: Any) -> Any:
    """Break every ``function.arguments`` in a chat reply or stream chunk (in place)."""
    if not isinstance(payload, dict):
        return payload
    for choice in payload.get("choices") or []:
        if not isinstance(choice, dict):
            continue
        for holder in (choice.get("message"), choice.get("delta")):
            if not isinstance(holder, dict):
                continue
            for call in holder.get("tool_calls") or []:
                fn = call.get("function") if isinstance(call, dict) else None
                if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                    fn["arguments"] = break_arguments(fn["arguments"])
    return payload


def malform_completion(completion: Completion) -> Completion:
    """A GLM-4.5 completion whose tool calls are never closed (the model forgot the tag)."""
    if "</tool_call>" not in completion.text:
        return completion
    return replace(completion, text=completion.text.replace("</tool_call>", ""))


def wrong_shape_body() -> dict[str, Any]:
    return {"object": "unexpected", "detail": "injected fault: wrong shape"}


def error_event_body(status: int) -> dict[str, Any]:
    return {"error": {"message": "injected fault: generation failed", "code": status}}


def dumps(payload: Any) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
