"""Scripted policies: what the test server's "model" answers.

A policy is either a list of raw GLM-4.5 completions served in order, or a callable taking a
:class:`PolicyRequest` (the conversation the server recovered from the request) and returning
the raw completion text or a :class:`Completion`; callables may be sync or async.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "AUTO_STOP",
    "Completion",
    "DialoguePolicy",
    "Policy",
    "PolicyExhausted",
    "PolicyRequest",
    "PolicyRunner",
    "ScriptedPolicy",
]

AUTO_STOP = "auto"


@dataclass(frozen=True)
class Completion:
    """One raw completion of the model, without its stop token.

    ``stop`` is the stop token the model emits after ``text``: ``"auto"`` picks
    ``<|observation|>`` after a tool call and ``<|user|>`` otherwise; any other token string
    (``"<|endoftext|>"``) is used as is; ``None`` means the model never stops by itself, so the
    answer finishes with ``length`` (a truncated generation).
    """

    text: str
    stop: str | None = AUTO_STOP


@dataclass(frozen=True)
class PolicyRequest:
    """What the model is asked: the conversation as the server understood it.

    ``messages`` are OpenAI-style dicts (tool-call ``arguments`` as mappings, as the template sees
    them); ``tools`` are the tool objects rendered into the prompt (empty with ``tool_choice``
    ``"none"``); ``prompt_text`` is the exact rendered prompt. In token mode (``/generate``) the
    conversation is recovered from the prompt text; ``assistant_prefix`` then holds any text
    already written after the final ``<|assistant|>`` (beyond the generation prompt).
    """

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    prompt_text: str
    enable_thinking: bool
    endpoint: Literal["chat", "generate"]
    assistant_prefix: str = ""
    request: dict[str, Any] = field(default_factory=dict)
    call_index: int = 0

    @property
    def first_user_message(self) -> str | None:
        for message in self.messages:
            if message.get("role") == "user":
                content = message.get("content")
                return content if isinstance(content, str) else None
        return None

    @property
    def last_message(self) -> dict[str, Any] | None:
        return self.messages[-1] if self.messages else None

    @property
    def assistant_turns(self) -> int:
        """How many assistant messages the conversation already holds."""
        return sum(1 for message in self.messages if message.get("role") == "assistant")


PolicyResult = str | Completion
PolicyCallable = Callable[[PolicyRequest], PolicyResult | Awaitable[PolicyResult]]
Policy = Sequence[PolicyResult] | PolicyCallable


class PolicyExhausted(RuntimeError):
    """A scripted policy was asked for more completions than it holds."""


class ScriptedPolicy:
    """Serves a fixed list of completions in order, one per request (thread-safe)."""

    def __init__(self, completions: Sequence[PolicyResult]) -> None:
        self._completions = list(completions)
        self._next = 0
        self._lock = threading.Lock()

    @property
    def remaining(self) -> int:
        return len(self._completions) - self._next

    def __call__(self, request: PolicyRequest) -> PolicyResult:
        with self._lock:
            if self._next >= len(self._completions):
                raise PolicyExhausted(
                    f"scripted policy exhausted: all {len(self._completions)} completions were "
                    f"already served (request #{request.call_index + 1})"
                )
            completion = self._completions[self._next]
            self._next += 1
        return completion


class DialoguePolicy:
    """Scripted dialogues for concurrent episodes, keyed by the episode's first user message.

    The completion served is chosen by how many assistant turns the conversation already holds,
    so the policy is stateless: concurrent episodes, retries and replays all get the same
    answer for the same conversation.
    """

    def __init__(
        self,
        dialogues: Mapping[str, Sequence[PolicyResult]],
        *,
        fallback: PolicyCallable | None = None,
    ) -> None:
        self._dialogues = {key: list(value) for key, value in dialogues.items()}
        self._fallback = fallback

    def __call__(self, request: PolicyRequest) -> PolicyResult | Awaitable[PolicyResult]:
        key = request.first_user_message
        script = self._dialogues.get(key) if key is not None else None
        if script is None:
            if self._fallback is not None:
                return self._fallback(request)
            raise PolicyExhausted(f"no scripted dialogue for first user message {key!r}")
        turn = request.assistant_turns
        if turn >= len(script):
            raise PolicyExhausted(
                f"dialogue {key!r} has {len(script)} completions; turn {turn + 1} was requested"
            )
        return script[turn]


class PolicyRunner:
    """Normalises any policy form into one awaitable call."""

    def __init__(self, policy: Policy) -> None:
        if isinstance(policy, str):
            raise TypeError("policy must be a list of completions or a callable, not a string")
        self._call: PolicyCallable
        if callable(policy):
            self._call = policy
        else:
            self._call = ScriptedPolicy(policy)
        self._count = 0
        self._lock = threading.Lock()

    def next_index(self) -> int:
        with self._lock:
            index = self._count
            self._count += 1
        return index

    async def __call__(self, request: PolicyRequest) -> Completion:
        result = self._call(request)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, Completion):
            return result
        if isinstance(result, str):
            return Completion(result)
        raise TypeError(f"policy returned {type(result).__name__}; expected str or Completion")
