"""Model backends behind one protocol: SGLang chat mode, SGLang token mode."""

from __future__ import annotations

import importlib
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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
