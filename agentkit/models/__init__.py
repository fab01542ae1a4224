"""Model backends behind one protocol: SGLang chat mode, SGLang token mode."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentkit.lazy_names import lazy_names
from agentkit.models.base import (
    Model,
    ModelDelta,
    ModelError,
    ModelRequest,
    ModelResponse,
    ModelSession,
    ModelSettings,
)

if TYPE_CHECKING:
    from agentkit.models.sglang_chat import SGLangChat
    from agentkit.models.sglang_tokens import SGLangTokens
    from agentkit.models.transport import RetryPolicy, Transport

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


# The HTTP backends and their transport (aiohttp, httpx) load when first asked for: a run on
# the embedded model, or a program that only names the protocol, never needs them.
_LAZY = {
    "SGLangChat": "agentkit.models.sglang_chat",
    "SGLangTokens": "agentkit.models.sglang_tokens",
    "RetryPolicy": "agentkit.models.transport",
    "Transport": "agentkit.models.transport",
}


__getattr__, __dir__ = lazy_names(__name__, _LAZY, __all__)
