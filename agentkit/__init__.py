"""agentkit: an async agent runtime for GLM-4.5 on SGLang, with sandboxed tools and
token-exact trajectories for RL."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentkit.agent import Agent
from agentkit.approvals import ApprovalDecision, PendingCall
from agentkit.conversation import Conversation
from agentkit.events import (
    FinalEvent,
    ModelRetryEvent,
    ReasoningDelta,
    RunEvent,
    TextDelta,
    ToolCallEvent,
    ToolCallStarted,
    ToolResultEvent,
    TurnEnd,
)
from agentkit.gc_tuning import tune_gc
from agentkit.hooks import Allow, Deny, EditArguments, ShortCircuit
from agentkit.lazy_names import lazy_names
from agentkit.messages import (
    AssistantMessage,
    Message,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from agentkit.models import Model, ModelError, ModelSession, ModelSettings
from agentkit.pricing import ModelPrice, PriceTable
from agentkit.result import RunResult
from agentkit.run_state import RunState
from agentkit.tool import RunContext, Tool, ToolError, ToolOutcome, ToolStatus, tool
from agentkit.toolset import DuplicateToolName, Toolset
from agentkit.trajectory.records import EpisodeStatus, Usage

if TYPE_CHECKING:
    # agentkit.EmbeddedChat works (lazily) but is not in __all__: it needs agentkit[embedded],
    # and `from agentkit import *` must work on a plain install.
    from agentkit.models.embedded_chat import EmbeddedChat as EmbeddedChat
    from agentkit.models.sglang_chat import SGLangChat
    from agentkit.models.sglang_tokens import SGLangTokens
    from agentkit.models.transport import RetryPolicy

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "Allow",
    "ApprovalDecision",
    "AssistantMessage",
    "Conversation",
    "Deny",
    "DuplicateToolName",
    "EditArguments",
    "EpisodeStatus",
    "FinalEvent",
    "Message",
    "Model",
    "ModelError",
    "ModelPrice",
    "ModelRetryEvent",
    "ModelSession",
    "ModelSettings",
    "PendingCall",
    "PriceTable",
    "ReasoningDelta",
    "RetryPolicy",
    "RunContext",
    "RunEvent",
    "RunResult",
    "RunState",
    "SGLangChat",
    "SGLangTokens",
    "ShortCircuit",
    "SystemMessage",
    "TextDelta",
    "Tool",
    "ToolCall",
    "ToolCallEvent",
    "ToolCallStarted",
    "ToolError",
    "ToolMessage",
    "ToolOutcome",
    "ToolResultEvent",
    "ToolStatus",
    "Toolset",
    "TurnEnd",
    "Usage",
    "UserMessage",
    "__version__",
    "tool",
    "tune_gc",
]


# The HTTP backends load aiohttp and httpx, token mode the dialect and a tokenizer, the
# embedded model numpy (agentkit[embedded]): each is imported only when asked for.
_LAZY = {
    "SGLangChat": "agentkit.models.sglang_chat",
    "SGLangTokens": "agentkit.models.sglang_tokens",
    "RetryPolicy": "agentkit.models.transport",
    "EmbeddedChat": "agentkit.models.embedded_chat",
}


__getattr__, __dir__ = lazy_names(__name__, _LAZY, __all__)
