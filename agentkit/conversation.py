"""The planner loop: one conversation with the model, turn after turn.

Turn = model call -> parse -> run the tool calls concurrently -> append results -> repeat, until a
final answer, a limit or cancellation. Unknown tools, invalid arguments, tool exceptions and
malformed calls become error observations the model sees. Everything is recorded as it happens.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

import anyio
from pydantic import BaseModel, ValidationError

from agentkit.events import (
    ModelRetryEvent,
    ReasoningDelta,
    RunEvent,
    TextDelta,
    ToolCallEvent,
    ToolCallStarted,
    ToolResultEvent,
    TurnEnd,
)
from agentkit.messages import (
    AssistantMessage,
    Message,
    ToolCall,
    ToolMessage,
    UserMessage,
    to_openai,
)
from agentkit.models.base import ModelDelta, ModelError, ModelRequest, StreamDeltaKind
from agentkit.result import RunResult
from agentkit.tool import RunContext, ToolOutcome, ToolStatus
from agentkit.trajectory.recorder import Record, Recorder
from agentkit.trajectory.records import (
    EnvStepRecord,
    EpisodeEnd,
    EpisodeStart,
    EpisodeStatus,
    FailureAttribution,
    Trajectory,
    Usage,
)

if TYPE_CHECKING:
    from agentkit.agent import Agent

DepsT = TypeVar("DepsT")
OutputT = TypeVar("OutputT")
EventHandler = Callable[[RunEvent], Awaitable[None]]

FINAL_RESULT_TOOL = "final_result"


class Conversation(Generic[DepsT, OutputT]):
    """A multi-turn conversation of one agent: ``send`` user messages, ``finish`` when done.

    Each conversation is one episode in the trajectory, with its own model session (so token mode
    keeps one append-only context) and its own ``deps``.
    """

    def __init__(
        self,
        agent: Agent[DepsT, OutputT],
        *,
        deps: DepsT,
        thinking: bool,
        recorders: list[Recorder],
        episode: EpisodeStart,
        message_history: list[Message] | None = None,
    ) -> None:
        self.agent = agent
        self.deps = deps
        self.thinking = thinking
        self.recorders = recorders
        self.session = agent.model.session(routing_key=episode.episode_id)
        self.messages: list[Message] = list(message_history or [])
        if not self.messages and agent.system_prompt:
            from agentkit.messages import SystemMessage

            self.messages.append(SystemMessage(content=agent.system_prompt))
        self.trajectory = Trajectory(start=episode)
        self.usage = Usage()
        self.turn = 0
        self._started = False
        self._t0 = time.perf_counter()
        self._step_index = 0
        self._announced_user: str | None = None

    @property
    def episode_id(self) -> str:
        return self.trajectory.episode_id

    async def _record(self, item: Record) -> None:
        for recorder in self.recorders:
            await recorder.record(item)

    async def _ensure_started(self) -> None:
        if not self._started:
            self._started = True
            await self._record(self.trajectory.start)

    async def record_env_step(self, step_type: Literal["user", "agent_reply"], text: str) -> None:
        """Record a user/environment message that is not a tool result (e.g. simulated user).
        A user message recorded here and then passed to :meth:`send` is recorded once."""
        await self._ensure_started()
        self._announced_user = text if step_type == "user" else None
        record = EnvStepRecord(
            episode_id=self.episode_id,
            index=self._next_step(),
            turn=self.turn,
            step_type=step_type,
            output=text,
            raw_output_chars=len(text),
            started_at=time.time(),
        )
        self.trajectory.steps.append(record)
        await self._record(record)

    def _next_step(self) -> int:
        self._step_index += 1
        return self._step_index - 1

    async def finish(
        self,
        *,
        status: EpisodeStatus | None = None,
        reward: float | None = None,
        reward_components: dict[str, Any] | None = None,
        output: Any = None,
        error: str | None = None,
        failure: FailureAttribution | None = None,
        termination_reason: str = "",
    ) -> EpisodeEnd:
        """Close the episode in the record (idempotent: a second call returns the first end)."""
        if self.trajectory.end is not None:
            return self.trajectory.end
        await self._ensure_started()
        end = EpisodeEnd(
            episode_id=self.episode_id,
            status=status or EpisodeStatus.COMPLETED,
            termination_reason=termination_reason,
            failure=failure,
            error=error,
            output=_jsonable(output),
            reward=reward,
            reward_components=reward_components or {},
            usage=self.usage.model_copy(),
            elapsed_s=time.perf_counter() - self._t0,
            messages=to_openai(self.messages),
        )
        self.trajectory.end = end
        await self._record(end)
        return end

    async def send(
        self, prompt: str | None, *, event_handler: EventHandler | None = None
    ) -> RunResult[OutputT]:
        """Add a user message (if any) and run turns until a final answer or a limit."""
        first_new = len(self.messages)
        if prompt is not None:
            if self._started and self._announced_user != prompt:
                # later user turns are environment steps (the first is in the episode's prompt)
                await self.record_env_step("user", prompt)
            self._announced_user = None
            self.messages.append(UserMessage(content=prompt))
        if not self._started and not self.trajectory.start.prompt_messages:
            self.trajectory.start.prompt_messages = to_openai(self.messages)
        await self._ensure_started()
        emit = event_handler or _ignore
        try:
            result = await self._loop(emit)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await self.finish(status=EpisodeStatus.CANCELLED, termination_reason="cancelled")
            raise
        except Exception as exc:
            with anyio.CancelScope(shield=True):
                await self.finish(
                    status=EpisodeStatus.FAILED,
                    error=f"{type(exc).__name__}: {exc}",
                    failure=FailureAttribution.INFRASTRUCTURE,
                    termination_reason="exception",
                )
            raise
        result.new_messages = self.messages[first_new:]
        return result

    def _result(
        self,
        status: EpisodeStatus,
        output: OutputT | None,
        text: str,
        error: str | None = None,
    ) -> RunResult[OutputT]:
        return RunResult(
            status=status,
            output=output,
            text=text,
            messages=list(self.messages),
            usage=self.usage.model_copy(),
            trajectory=self.trajectory,
            turns=self.turn,
            error=error,
        )

    async def _loop(self, emit: EventHandler) -> RunResult[OutputT]:
        agent = self.agent
        output_failures = 0
        for _ in range(agent.max_turns):
            turn = self.turn
            self.turn += 1
            request = ModelRequest.model_construct(
                tool_choice="auto",
                messages=self.messages,
                tools=agent.tool_schemas,
                thinking=self.thinking,
                settings=agent.settings,
                episode_id=self.episode_id,
                turn=turn,
                call_index=len(self.trajectory.calls),
            )
            on_delta = (
                _delta_forwarder(emit, turn) if agent.streaming or emit is not _ignore else None
            )
            try:
                response = await self.session.generate(request, on_delta=on_delta)
            except ModelError as exc:
                return await self._model_failed(exc, turn)
            self.trajectory.calls.append(response.record)
            self.usage.add_call(response.record)
            await self._record(response.record)
            message = response.message
            self.messages.append(message)

            calls = list(message.tool_calls)
            limit = agent.max_tool_calls_per_turn
            if limit is not None and len(calls) > limit:
                # Keep only the first calls, as tau-bench does; the record keeps the raw output.
                calls = calls[:limit]
                message = message.model_copy(update={"tool_calls": calls})
                self.messages[-1] = message
            if calls or response.malformed_calls:
                final = await self._run_tools(calls, response.malformed_calls, turn, emit)
                if emit is not _ignore:
                    await emit(
                        TurnEnd(turn=turn, finish_reason=response.finish_reason, usage=self.usage)
                    )
                if final is not None:
                    return await self._complete(final, _final_text(message))
                continue

            if emit is not _ignore:
                await emit(
                    TurnEnd(turn=turn, finish_reason=response.finish_reason, usage=self.usage)
                )
            text = message.content.strip()
            if response.finish_reason == "length":
                return self._result(
                    EpisodeStatus.TRUNCATED, None, text, "the reply hit the token limit"
                )
            if agent.output_type is None:
                return await self._complete(text, text)
            try:
                value = _validate_output(agent.output_type, text)
            except (ValidationError, ValueError) as exc:
                output_failures += 1
                if output_failures > agent.output_retries:
                    return self._result(
                        EpisodeStatus.OUTPUT_INVALID, None, text, f"final answer invalid: {exc}"
                    )
                retry = _retry_prompt(agent.output_type, exc)
                await self.record_env_step("user", retry)
                self._announced_user = None
                self.messages.append(UserMessage(content=retry))
                continue
            return await self._complete(value, text)
        return self._result(
            EpisodeStatus.MAX_TURNS,
            None,
            _final_text(self.messages[-1]) if self.messages else "",
            f"stopped after max_turns={agent.max_turns} model calls without a final answer",
        )

    async def _complete(self, output: Any, text: str) -> RunResult[OutputT]:
        return self._result(EpisodeStatus.COMPLETED, output, text)

    async def _model_failed(self, exc: ModelError, turn: int) -> RunResult[OutputT]:
        return self._result(EpisodeStatus.MODEL_ERROR, None, "", str(exc))

    async def _run_tools(
        self,
        calls: list[ToolCall],
        malformed: list[str],
        turn: int,
        emit: EventHandler,
    ) -> Any:
        """Run the calls concurrently; append results in call order. Returns the validated final
        output if the model called ``final_result`` successfully, else ``None``."""
        agent = self.agent
        outcomes: list[ToolOutcome | None] = [None] * len(calls)
        started_at = [0.0] * len(calls)
        limit = agent.max_parallel_tools
        limiter = anyio.CapacityLimiter(limit) if limit and limit < len(calls) else None

        async def run_one(i: int, call: ToolCall) -> None:
            if limiter is None:
                await run_call(i, call)
            else:
                async with limiter:
                    await run_call(i, call)

        async def run_call(i: int, call: ToolCall) -> None:
            started_at[i] = time.time()
            if emit is not _ignore:
                await emit(ToolCallEvent(turn=turn, call=call))
            ctx = RunContext(deps=self.deps, run_id=self.episode_id, turn=turn, call_id=call.id)
            target = agent.tools_by_name.get(call.name)
            if target is None:
                names = ", ".join(sorted(agent.tools_by_name)) or "none"
                message = f"unknown tool {call.name!r}; available tools: {names}"
                outcomes[i] = ToolOutcome(
                    status=ToolStatus.UNKNOWN_TOOL,
                    output=f"Error: {message}",
                    error=message,
                    error_type="UnknownTool",
                )
            else:
                outcomes[i] = await target.call(call.arguments, ctx)

        try:
            if len(calls) == 1:
                await run_one(0, calls[0])
            else:
                async with anyio.create_task_group() as tg:
                    for i, call in enumerate(calls):
                        tg.start_soon(run_one, i, call)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                for i, call in enumerate(calls):
                    if outcomes[i] is None:
                        outcomes[i] = ToolOutcome(
                            status=ToolStatus.CANCELLED,
                            output="Error: the run was cancelled before this call finished",
                            error="cancelled",
                        )
                    await self._append_tool_result(call, outcomes[i], turn, started_at[i])  # type: ignore[arg-type]
            raise
        final: Any = None
        for i, call in enumerate(calls):
            outcome = outcomes[i]
            assert outcome is not None
            await self._append_tool_result(call, outcome, turn, started_at[i])
            if emit is not _ignore:
                await emit(ToolResultEvent(turn=turn, call=call, outcome=outcome))
            if call.name == FINAL_RESULT_TOOL and outcome.ok:
                final = _final_from_outcome(agent.output_type, outcome)
        for problem in malformed:
            text = (
                f"Error: your tool call could not be parsed ({problem}). Write each call as "
                "<tool_call>NAME\n<arg_key>KEY</arg_key>\n<arg_value>VALUE</arg_value>\n</tool_call>."
            )
            outcome = ToolOutcome(
                status=ToolStatus.INVALID_ARGUMENTS,
                output=text,
                error=problem,
                error_type="MalformedToolCall",
            )
            placeholder = ToolCall(id="", name="", arguments={})
            await self._append_tool_result(placeholder, outcome, turn, time.time())
            await emit(ToolResultEvent(turn=turn, call=placeholder, outcome=outcome))
        return final

    async def _append_tool_result(
        self, call: ToolCall, outcome: ToolOutcome, turn: int, started_at: float
    ) -> None:
        self.usage.tool_calls += 1 if call.name else 0
        self.messages.append(
            ToolMessage(
                tool_call_id=call.id,
                name=call.name,
                content=outcome.output,
                is_error=not outcome.ok,
            )
        )
        record = EnvStepRecord(
            episode_id=self.episode_id,
            index=self._next_step(),
            turn=turn,
            step_type="tool",
            call=call if call.name else None,
            status=outcome.status.value,
            error=outcome.error,
            error_type=outcome.error_type,
            raw_output_chars=outcome.raw_chars,
            output=outcome.output,
            truncated=outcome.truncated,
            latency_s=outcome.elapsed_s,
            started_at=started_at,
        )
        self.trajectory.steps.append(record)
        await self._record(record)


async def _ignore(event: RunEvent) -> None:
    return None


def _delta_forwarder(emit: EventHandler, turn: int) -> Callable[[ModelDelta], Awaitable[None]]:
    async def forward(delta: ModelDelta) -> None:
        if delta.kind == StreamDeltaKind.REASONING:
            await emit(ReasoningDelta(turn=turn, text=delta.text))
        elif delta.kind == StreamDeltaKind.CONTENT:
            await emit(TextDelta(turn=turn, text=delta.text))
        elif delta.kind == StreamDeltaKind.TOOL_CALL_START:
            await emit(ToolCallStarted(turn=turn, index=delta.index or 0, name=delta.name or ""))
        elif delta.kind == StreamDeltaKind.RETRY and delta.attempt is not None:
            await emit(ModelRetryEvent(turn=turn, attempt=delta.attempt))

    return forward


def _final_text(message: Message) -> str:
    return message.content.strip() if isinstance(message, AssistantMessage) else ""


_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def _validate_output(output_type: type[BaseModel], text: str) -> BaseModel:
    """Validate the final answer: a JSON object (optionally in a code fence) for the model."""
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1)
    if not body.startswith("{"):
        start, end = body.find("{"), body.rfind("}")
        if start == -1 or end <= start:
            raise ValueError("the final answer contains no JSON object")
        body = body[start : end + 1]
    return output_type.model_validate_json(body)


def _final_from_outcome(output_type: type[BaseModel] | None, outcome: ToolOutcome) -> Any:
    if output_type is None:
        return outcome.output
    return output_type.model_validate_json(outcome.output)


def _retry_prompt(output_type: type[BaseModel], exc: Exception) -> str:
    schema = json.dumps(output_type.model_json_schema(), ensure_ascii=False)
    return (
        f"Your final answer did not validate: {exc}\n"
        f"Reply with only a JSON object that matches this schema:\n{schema}"
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value
