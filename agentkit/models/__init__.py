"""Model backends behind one protocol: SGLang chat mode, SGLang token mode."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agentkit.models.base import (
    Model,
    ModelDelta,
    ModelError,
    ModelRequest,
    ModelResponse,
    ModelSession,
    ModelSettings,
)
from agentkit.models.sglang_chat import SGLangChat
from agentkit.models.transport import RetryPolicy, Transport

if TYPE_CHECKING:
    from agentkit.models.sglang_tokens import SGLangTokens

__all__ = [
    "Model",
    "ModelDelta",
    "ModelError",
    "ModelRequest",
    "ModelResponse",
    "ModelSession",
    "ModelSettings",
    "RetryPolicy",
    "SGLangChat",
    "SGLangTokens",
    "Transport",
]


def __getattr__(name: str) -> Any:
    # Token mode needs the dialect and a tokenizer: import it only when asked for.
    if name == "SGLangTokens":
        from agentkit.models.sglang_tokens import SGLangTokens

        return SGLangTokens
    raise AttributeError(name)
