"""What an agent is made of: a model, instructions, tools, limits and hooks, checked once.

:class:`AgentBase` is the configuration the loop reads (:mod:`agentkit.conversation` types its
agent with it); :class:`agentkit.agent.Agent` adds running on top. Keeping the two apart means
the conversation never imports the module that builds conversations.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from agentkit.agent_config import (
    build_tools,
    check_hook,
    check_limits,
    check_model,
    check_recorder,
)
from agentkit.hooks import AfterToolCall, BeforeToolCall
from agentkit.models.base import Model, ModelSettings
from agentkit.pricing import Prices, as_price_table
from agentkit.tool import RunContext, Tool, ToolLike
from agentkit.trajectory.recorder import Recorder

DepsT = TypeVar("DepsT")
OutputT = TypeVar("OutputT")

FINAL_RESULT_TOOL = "final_result"


class AgentBase(Generic[DepsT, OutputT]):
    """An agent's configuration (see :class:`agentkit.agent.Agent`, which is the one to use)."""

    def __init__(
        self,
        model: Model,
        *,
        instructions: str | None = None,
        tools: Sequence[ToolLike] = (),
        thinking: bool = True,
        max_turns: int = 20,
        output_type: type[OutputT] | None = None,
        output_retries: int = 2,
        settings: ModelSettings | None = None,
        recorder: Recorder | None = None,
        max_parallel_tools: int | None = None,
        max_tool_calls_per_turn: int | None = None,
        name: str = "agent",
        before_tool_call: BeforeToolCall | None = None,
        after_tool_call: AfterToolCall | None = None,
        prices: Prices | None = None,
    ) -> None:
        check_model(model)
        check_limits(
            max_turns=max_turns,
            output_retries=output_retries,
            max_parallel_tools=max_parallel_tools,
            max_tool_calls_per_turn=max_tool_calls_per_turn,
        )
        if settings is not None and not isinstance(settings, ModelSettings):
            raise TypeError(f"settings must be a ModelSettings, not {type(settings).__name__}")
        if instructions is not None and not isinstance(instructions, str):
            raise TypeError(f"instructions must be a str, not {type(instructions).__name__}")
        check_recorder(recorder, "recorder")
        check_hook(before_tool_call, "before_tool_call")
        check_hook(after_tool_call, "after_tool_call")
        self.prices = as_price_table(prices)
        self.before_tool_call = before_tool_call
        self.after_tool_call = after_tool_call
        self.model = model
        self.instructions = instructions
        self.thinking = thinking
        self.max_turns = max_turns
        self.output_type: type[BaseModel] | None = None
        if output_type is not None:
            if not (isinstance(output_type, type) and issubclass(output_type, BaseModel)):
                raise TypeError("output_type must be a pydantic BaseModel subclass")
            self.output_type = output_type
        self.output_retries = output_retries
        self.settings = settings or ModelSettings()
        self.recorder = recorder
        self.max_parallel_tools = max_parallel_tools
        self.max_tool_calls_per_turn = max_tool_calls_per_turn
        self.name = name
        extra = [_final_result_tool(self.output_type)] if self.output_type is not None else []
        self.tools: list[Tool] = build_tools(tools, extra)
        self.tools_by_name = {t.name: t for t in self.tools}
        self.tool_schemas = [t.schema() for t in self.tools]

    @property
    def system_prompt(self) -> str | None:
        parts = [self.instructions] if self.instructions else []
        if self.output_type is not None:
            schema = json.dumps(self.output_type.model_json_schema(), ensure_ascii=False)
            parts.append(
                "When you have the final answer, call the final_result tool with it, or reply "
                f"with only a JSON object matching this schema:\n{schema}"
            )
        return "\n\n".join(parts) if parts else None


def _final_result_tool(output_type: type[BaseModel]) -> Tool:
    schema = output_type.model_json_schema()

    async def handler(arguments: dict[str, Any], ctx: RunContext[Any]) -> str:
        return output_type.model_validate(arguments).model_dump_json()

    parameters = {k: v for k, v in schema.items() if k != "title"}
    return Tool(
        FINAL_RESULT_TOOL,
        "Give the final answer in the required structure; the run ends when it validates.",
        parameters,
        handler,
        validator=output_type,
        timeout=None,
        max_output_chars=sys.maxsize,  # the answer is parsed back from this text: never cut it
    )
