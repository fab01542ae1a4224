"""The Agent: instructions, tools, a model and limits; ``run``, ``stream`` and conversations."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import anyio
from pydantic import BaseModel

from agentkit.conversation import FINAL_RESULT_TOOL, Conversation, EventHandler
from agentkit.events import FinalEvent, RunEvent
from agentkit.messages import Message
from agentkit.models.base import Model, ModelSettings
from agentkit.result import RunResult
from agentkit.tool import RunContext, Tool, ToolLike, as_tool
from agentkit.trajectory.recorder import Recorder
from agentkit.trajectory.records import EpisodeStart, new_episode_id

DepsT = TypeVar("DepsT")
OutputT = TypeVar("OutputT")


class Agent(Generic[DepsT, OutputT]):
    """An agent: a model, instructions, tools, limits and an optional structured output type.

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
    ) -> None:
        if max_turns < 1:
            raise ValueError("max_turns must be at least 1")
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
        self.streaming = False
        self.tools: list[Tool] = [as_tool(t) for t in tools]
        if self.output_type is not None:
            self.tools.append(_final_result_tool(self.output_type))
        self.tools_by_name = {t.name: t for t in self.tools}
        if len(self.tools_by_name) != len(self.tools):
            raise ValueError("two tools share a name")
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
        await conv.finish(
            status=result.status,
            output=result.output,
            error=result.error,
            failure=_attribution(result),
            termination_reason=result.status.value,
        )
        return result

    async def stream(
        self,
        prompt: str,
        *,
        deps: DepsT = None,  # type: ignore[assignment]
        thinking: bool | None = None,
        recorder: Recorder | None = None,
        message_history: list[Message] | None = None,
        **episode: Any,
    ) -> AsyncIterator[RunEvent]:
        """Yield events while the run goes; the last event is :class:`FinalEvent`."""
        send, receive = anyio.create_memory_object_stream[RunEvent](math.inf)

        async def runner() -> None:
            async with send:
                result = await self.run(
                    prompt,
                    deps=deps,
                    thinking=thinking,
                    recorder=recorder,
                    message_history=message_history,
                    event_handler=send.send,
                    **episode,
                )
                await send.send(FinalEvent(result=result))

        async with anyio.create_task_group() as tg:
            tg.start_soon(runner)
            try:
                async with receive:
                    async for event in receive:
                        yield event
            finally:
                tg.cancel_scope.cancel()


def _attribution(result: RunResult[Any]) -> Any:
    from agentkit.trajectory.records import EpisodeStatus, FailureAttribution

    if result.status is EpisodeStatus.MODEL_ERROR:
        return FailureAttribution.INFRASTRUCTURE
    if result.status in (
        EpisodeStatus.MAX_TURNS,
        EpisodeStatus.OUTPUT_INVALID,
        EpisodeStatus.TRUNCATED,
    ):
        return FailureAttribution.POLICY
    return None


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
    )
