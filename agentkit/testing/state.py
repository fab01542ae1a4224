"""Shared state of one test server: options, tokenizer, engine, policy, records, faults."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from agentkit.tokenizer import HFTokenizersTokenizer

from .engine import Engine
from .faults import Fault, FaultPlan
from .policy import PolicyRunner
from .segment_cache import SegmentCachedEncoder

__all__ = ["RequestRecord", "ServerOptions", "ServerState", "error_response", "json_response"]


@dataclass(frozen=True)
class ServerOptions:
    """Knobs of the simulated engine.

    ``latency_s`` is slept before every generation answer; ``chunk_delay_s`` between streamed
    chunks. ``accept_length`` is the simulated EAGLE/MTP mean accept length (``None``: no
    speculative decoding, no ``spec_*`` fields); streamed chunks carry one decoding step each
    unless ``stream_tokens_per_chunk`` is set. ``enable_cache_report`` fills
    ``usage.prompt_tokens_details.cached_tokens`` in chat mode like SGLang's flag.
    ``enable_return_routed_experts`` is SGLang's ``--enable-return-routed-experts``: without it a
    request's ``return_routed_experts`` gets no routing back; ``moe_layers``, ``moe_top_k`` and
    ``moe_experts`` are the simulated MoE layout.
    """

    model: str = "glm-4.5-test"
    latency_s: float = 0.0
    chunk_delay_s: float = 0.0
    accept_length: float | None = 2.0
    stream_tokens_per_chunk: int | None = None
    weight_version: str = "default"
    enable_cache_report: bool = False
    context_length: int = 131072
    enable_return_routed_experts: bool = False
    moe_layers: int = 3
    moe_top_k: int = 2
    moe_experts: int = 16


@dataclass
class RequestRecord:
    """One request the server received and what it answered (for tests to assert on)."""

    method: str
    path: str
    request: Any
    status: int = 200
    response: Any = None
    chunks: list[Any] = field(default_factory=list)
    dropped: bool = False
    fault: Fault | None = None


def _dumps(payload: Any) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def json_response(payload: Any, status: int = 200) -> web.Response:
    return web.Response(text=_dumps(payload), status=status, content_type="application/json")


def error_response(message: str, status: int, *, openai: bool = True) -> web.Response:
    """An error body in SGLang's shape (OpenAI-style for ``/v1``, ``{"error"}`` otherwise)."""
    kinds = {400: "BadRequestError", 404: "NotFoundError", 500: "InternalServerError"}
    if openai:
        payload: dict[str, Any] = {
            "object": "error",
            "message": message,
            "type": kinds.get(status, "ServiceUnavailableError" if status == 503 else "Error"),
            "param": None,
            "code": status,
        }
    else:
        payload = {"error": {"message": message}}
    return json_response(payload, status)


class ServerState:
    def __init__(
        self,
        *,
        tokenizer: HFTokenizersTokenizer,
        policy: PolicyRunner,
        options: ServerOptions,
    ) -> None:
        self.tokenizer = tokenizer
        self.policy = policy
        self.options = options
        self.encoder = SegmentCachedEncoder(tokenizer)
        self.engine = Engine(
            tokenizer, encode=self.encoder.encode, accept_length=options.accept_length
        )
        self.weight_version = options.weight_version
        self.records: list[RequestRecord] = []
        self.started_at = time.time()
        self._lock = threading.Lock()
        self._fail: list[int] = []
        self._drop = 0
        self._aborted: set[str] = set()
        self._abort_all_epoch = 0
        self.faults = FaultPlan()
        # Set by the running server: stop listening, and listen again after a delay (None: never).
        self.die: Callable[[float | None], Coroutine[Any, Any, None]] | None = None

    # fault injection -------------------------------------------------------------------------
    def fail_next(self, count: int, status: int) -> None:
        with self._lock:
            self._fail.extend([status] * count)

    def drop_next(self, count: int) -> None:
        with self._lock:
            self._drop += count

    def take_fault(self) -> tuple[int | None, bool]:
        """``(status to fail with, whether to drop)`` for the next generation request."""
        with self._lock:
            if self._drop:
                self._drop -= 1
                return None, True
            if self._fail:
                return self._fail.pop(0), False
        return None, False

    # aborts ----------------------------------------------------------------------------------
    def abort(self, rid: str | None, abort_all: bool) -> None:
        with self._lock:
            if abort_all:
                self._abort_all_epoch += 1
            elif rid:
                self._aborted.add(rid)

    def abort_epoch(self) -> int:
        return self._abort_all_epoch

    def is_aborted(self, rid: str, epoch: int) -> bool:
        return rid in self._aborted or self._abort_all_epoch != epoch

    # bookkeeping -----------------------------------------------------------------------------
    def record(self, record: RequestRecord) -> RequestRecord:
        with self._lock:
            self.records.append(record)
        return record

    @staticmethod
    def new_rid() -> str:
        return uuid.uuid4().hex
