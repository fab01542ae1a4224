"""The Agent: instructions, tools, a model and limits; ``run``, ``stream`` and conversations."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

from pydantic import BaseModel

from agentkit.agent_config import (
    build_tools,
    check_hook,
    check_limits,
    check_model,
    check_recorder,
)
from agentkit.approvals import Decisions
from agentkit.conversation import FINAL_RESULT_TOOL, Conversation, EventHandler
from agentkit.hooks import AfterToolCall, BeforeToolCall
from agentkit.messages import Message
from agentkit.models.base import Model, ModelSettings
from agentkit.pricing import Prices, as_price_table
from agentkit.result import RunResult
from agentkit.run_state import RunState
from agentkit.run_stream import RunStream, stop_all
from agentkit.tool import RunContext, Tool, ToolLike
from agentkit.trajectory.recorder import Recorder
from agentkit.trajectory.records import EpisodeStart, EpisodeStatus, new_episode_id

DepsT = TypeVar("DepsT")
OutputT = TypeVar("OutputT")


class Agent(Generic[DepsT, OutputT]):
    """An agent: a model, instructions, tools, limits and an optional structured output type.

    Everything is checked here, so a bad configuration fails at the line that builds the agent
    (``TypeError`` for a wrong kind of value, ``ValueError`` for a bad value), not at the first
    run.

    ``before_tool_call`` / ``after_tool_call``: hooks around every tool call (see
    :mod:`agentkit.hooks`); ``prices``: dollars per 1M tokens, giving ``usage.cost`` (see
    :mod:`agentkit.pricing`). Tools that require approval pause the run (see :meth:`resume`).

    >>> agent = Agent(model=SGLangChat(url), instructions="Be brief.", tools=[get_weather])
    >>> result = await agent.run("Weather in Paris?")
    """

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
        self._streams: set[Any] = set()  # runs of ``stream`` still going
        self._stream_tasks: set[Any] = set()

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

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop any stream still running (its episode is closed as cancelled), close the model."""
        await stop_all(self._streams)
        await self.model.aclose()

    def conversation(
        self,
        *,
        deps: DepsT = None,  # type: ignore[assignment]
        thinking: bool | None = None,
        recorder: Recorder | None = None,
        message_history: list[Message] | None = None,
        episode_id: str | None = None,
        task_id: str | None = None,
        group_id: str | None = None,
        sample_index: int | None = None,
        metadata: dict[str, Any] | None = None,
        label: Any = None,
    ) -> Conversation[DepsT, OutputT]:
        """Start a multi-turn conversation (one episode); ``send`` user messages to it."""
        check_recorder(recorder, "recorder")
        think = self.thinking if thinking is None else thinking
        episode = EpisodeStart(
            episode_id=episode_id or new_episode_id(),
            task_id=task_id,
            group_id=group_id,
            sample_index=sample_index,
            mode="tokens" if self.model.mode == "tokens" else "chat",
            token_exact=self.model.mode == "tokens",
            model=self.model.name,
            instructions=self.system_prompt,
            tools=self.tool_schemas,
            thinking=think,
            metadata=metadata or {},
            label=label,
        )
        recorders = [r for r in (self.recorder, recorder) if r is not None]
        return Conversation(
            self,
            deps=deps,
            thinking=think,
            recorders=recorders,
            episode=episode,
            message_history=message_history,
        )

    async def run(
        self,
        prompt: str,
        *,
        deps: DepsT = None,  # type: ignore[assignment]
        thinking: bool | None = None,
        recorder: Recorder | None = None,
        message_history: list[Message] | None = None,
        event_handler: EventHandler | None = None,
        **episode: Any,
    ) -> RunResult[OutputT]:
        """Run to a final answer or a limit; the episode is closed in the record either way."""
        conv = self.conversation(
            deps=deps,
            thinking=thinking,
            recorder=recorder,
            message_history=message_history,
            **episode,
        )
        result = await conv.send(prompt, event_handler=event_handler)
        if result.status is EpisodeStatus.AWAITING_APPROVAL:
            return result  # the episode stays open: resume it with decisions
        return await conv.close_with(result)

    async def resume(
        self,
        state: RunState | str | bytes,
        decisions: Decisions,
        *,
        deps: DepsT = None,  # type: ignore[assignment]
        recorder: Recorder | None = None,
        event_handler: EventHandler | None = None,
    ) -> RunResult[OutputT]:
        """Go on with a run that paused for approval (``result.state``, or its JSON), in this
        process or another: ``decisions`` answer every pending call (approve, deny with a
        message, edit the arguments). The same episode goes on in the record (pass the store
        as this agent's or as ``recorder``); its end is written once the run really ends. It
        may pause again. ``ValueError`` (nothing recorded) when the decisions or the agent do
        not fit the state."""
        check_recorder(recorder, "recorder")
        if isinstance(state, str | bytes):
            state = RunState.model_validate_json(state)
        if not isinstance(state, RunState):
            raise TypeError(f"state must be a RunState or its JSON, not {type(state).__name__}")
        recorders = [r for r in (self.recorder, recorder) if r is not None]
        conv = Conversation.from_state(self, state, deps=deps, recorders=recorders)
        result = await conv.resume(decisions, event_handler=event_handler)
        if result.status is EpisodeStatus.AWAITING_APPROVAL:
            return result
        return await conv.close_with(result)

    def stream(
        self,
        prompt: str,
        *,
        deps: DepsT = None,  # type: ignore[assignment]
        thinking: bool | None = None,
        recorder: Recorder | None = None,
        message_history: list[Message] | None = None,
        **episode: Any,
    ) -> RunStream:
        """Events while the run goes (``async for``); the last event is :class:`FinalEvent`.

        Leaving early (``break``, ``aclose()``, an outer cancel scope, task cancellation) is
        clean: the episode is closed as ``cancelled`` and nothing is raised into the caller
        but its own cancellation (see ``agentkit/run_stream.py``).
        """
        check_recorder(recorder, "recorder")

        async def run(emit: EventHandler) -> RunResult[Any]:
            return await self.run(
                prompt,
                deps=deps,
                thinking=thinking,
                recorder=recorder,
                message_history=message_history,
                event_handler=emit,
                **episode,
            )

        return RunStream(run, self._streams, self._stream_tasks)


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
