"""agentkit: an async agent runtime for GLM-4.5 on SGLang, with sandboxed tools and
token-exact trajectories for RL."""

from __future__ import annotations

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
from agentkit.messages import (
    AssistantMessage,
    Message,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from agentkit.pricing import ModelPrice, PriceTable
from agentkit.result import RunResult
from agentkit.run_state import RunState
from agentkit.tool import RunContext, Tool, ToolError, ToolOutcome, ToolStatus, tool
from agentkit.toolset import DuplicateToolName, Toolset
from agentkit.trajectory.records import EpisodeStatus, Usage

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
    "ModelPrice",
    "ModelRetryEvent",
    "PendingCall",
    "PriceTable",
    "ReasoningDelta",
    "RunContext",
    "RunEvent",
    "RunResult",
    "RunState",
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
