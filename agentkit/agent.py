"""The Agent: instructions, tools, a model and limits; ``run``, ``stream`` and conversations."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from agentkit.agent_base import AgentBase, DepsT, OutputT
from agentkit.agent_config import check_recorder
from agentkit.approvals import Decisions
from agentkit.closing import AsyncCloseable
from agentkit.conversation import Conversation, EventHandler
from agentkit.messages import Message
from agentkit.result import RunResult
from agentkit.run_state import RunState
from agentkit.run_stream import RunStream, stop_all
from agentkit.trajectory.recorder import Recorder
from agentkit.trajectory.records import EpisodeStart, EpisodeStatus, new_episode_id


class Agent(AgentBase[DepsT, OutputT], AsyncCloseable):
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

    @cached_property
    def _streams(self) -> set[Any]:
        """The runs of :meth:`stream` still going (stopped by :meth:`aclose`)."""
        return set()

    @cached_property
    def _stream_tasks(self) -> set[Any]:
        return set()

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
        # conv.send's turns, awaited here without send's own coroutine in between
        result = await conv._send_turns(prompt, event_handler)
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
