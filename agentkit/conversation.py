"""The planner loop: one conversation with the model, turn after turn.

Turn = model call -> parse -> run the tool calls concurrently -> append results -> repeat, until a
final answer, a limit or cancellation. Unknown tools, invalid arguments, tool exceptions and
malformed calls become error observations the model sees. Everything is recorded as it happens.

Nothing but cancellation leaves ``send``: an unexpected error (a raising event handler or
recorder, a backend bug) ends the episode ``failed`` with the error in the record, and a
cancellation is re-raised only once the episode is closed as ``cancelled``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

import anyio

from agentkit.approvals import (
    ApprovalDecision,
    Decisions,
    PendingCall,
    check_decisions,
    pending_approvals,
)
from agentkit.conversation_pause import check_resumable, paused_state, restore
from agentkit.conversation_tools import FINAL_RESULT_TOOL as FINAL_RESULT_TOOL
from agentkit.conversation_tools import run_tools
from agentkit.events import RunEvent, TurnEnd, delta_forwarder
from agentkit.final_answer import (
    OutputInvalid,
    final_text,
    jsonable,
    retry_prompt,
    validate_output,
)
from agentkit.gc_tuning import run_gc
from agentkit.hooks import CallGate
from agentkit.messages import (
    Message,
    ToolCall,
    assemble,
    system_message,
    to_openai,
    user_message,
)
from agentkit.models.base import ModelError, ModelRequest, ModelSession
from agentkit.models.recording import CallClock, CallInput, failed_call_record
from agentkit.pricing import priced
from agentkit.result import RunResult, failure_attribution
from agentkit.run_state import RunState
from agentkit.step_records import approval_step
from agentkit.tool import Tool, describe_exception
from agentkit.tool_turn import dialect_of
from agentkit.trajectory.recorder import Record, Recorder
from agentkit.trajectory.records import (
    EnvStepRecord,
    EpisodeEnd,
    EpisodeStart,
    EpisodeStatus,
    FailureAttribution,
    Trajectory,
    Usage,
    trusted,
)

if TYPE_CHECKING:
    from agentkit.agent_base import AgentBase

DepsT = TypeVar("DepsT")
OutputT = TypeVar("OutputT")
EventHandler = Callable[[RunEvent], Awaitable[None]]


class RecordingFailed(Exception):
    """A recorder raised while the run was writing its record (e.g. the disk is full)."""


class Conversation(Generic[DepsT, OutputT]):
    """A multi-turn conversation of one agent: ``send`` user messages, ``finish`` when done.

    Each conversation is one episode in the trajectory, with its own model session (so token mode
    keeps one append-only context) and its own ``deps``.
    """

    def __init__(
        self,
        agent: AgentBase[DepsT, OutputT],
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
        self._session: ModelSession | None = None
        self._session_error: Exception | None = None
        try:
            self._session = agent.model.session(routing_key=episode.episode_id)
        except Exception as exc:  # reported by the first send, as a failed episode
            self._session_error = exc
        self.messages: list[Message] = list(message_history or [])
        if not self.messages:
            system = agent.system_prompt
            if system:
                self.messages.append(system_message(system))
        if type(episode) is EpisodeStart:  # kept as it is, as validation keeps an instance
            self.trajectory = trusted(Trajectory, {"start": episode})
        else:
            self.trajectory = Trajectory(start=episode)
        self.usage = trusted(Usage, {})
        self.turn = 0
        self.record_errors: list[str] = []
        self._started = False
        self._t0 = time.perf_counter()
        self._step_index = 0
        self._announced_user: str | None = None
        self._dialect = dialect_of(agent.model)
        self._calls_before = 0  # model calls recorded before a resume (in another process)
        self._turn_limit = 0
        self._output_failures = 0
        self._first_new = 0
        self._pauses = 0
        self.paused: RunState | None = None

    @classmethod
    def from_state(
        cls,
        agent: AgentBase[DepsT, OutputT],
        state: RunState,
        *,
        deps: DepsT,
        recorders: list[Recorder],
    ) -> Conversation[DepsT, OutputT]:
        """The conversation of a paused run, ready for :meth:`resume` (nothing is recorded
        until then). ``ValueError`` if the agent cannot continue it (another mode, a missing
        tool, a token context its model session cannot take)."""
        check_resumable(agent, state)
        conv = cls(
            agent,
            deps=deps,
            thinking=state.thinking,
            recorders=recorders,
            episode=state.episode,
            message_history=list(state.messages),
        )
        restore(conv, state)
        return conv

    @property
    def episode_id(self) -> str:
        return self.trajectory.episode_id

    @property
    def session(self) -> ModelSession:
        if self._session is None:
            raise RuntimeError(
                f"the model gave no session: {describe_exception(self._session_error or Exception())}"
            )
        return self._session

    async def _record(self, item: Record, *, strict: bool = True) -> None:
        """Give ``item`` to every recorder. A recorder that raises does not stop the others;
        with ``strict`` the run then fails (its record is incomplete), else it goes on."""
        failed: str | None = None
        for recorder in self.recorders:
            try:
                await recorder.record(item)
            except anyio.get_cancelled_exc_class():
                raise
            except Exception as exc:
                failed = f"recorder {type(recorder).__name__} failed: {describe_exception(exc)}"
                self.record_errors.append(failed)
        if failed is not None and strict:
            raise RecordingFailed(failed)

    async def _ensure_started(self) -> None:
        if not self._started:
            self._started = True
            if self.recorders:
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
        turn_rewards: dict[int, float] | None = None,
        tool_rewards: dict[str, float] | None = None,
    ) -> EpisodeEnd:
        """Close the episode in the record (idempotent: a second call returns the first end).

        A recorder that fails here is noted in :attr:`record_errors`; nothing is raised."""
        if self.trajectory.end is not None:
            return self.trajectory.end
        if not self._started:
            self._started = True
            if self.recorders:
                await self._record(self.trajectory.start, strict=False)
        values: dict[str, Any] = {
            "episode_id": self.episode_id,
            "status": status or EpisodeStatus.COMPLETED,
            "termination_reason": termination_reason,
            "failure": failure,
            "error": error,
            "output": jsonable(output),
            "reward": reward,
            "reward_components": reward_components or {},
            "turn_rewards": turn_rewards or {},
            "tool_rewards": tool_rewards or {},
            "usage": self.priced_usage(),
            "elapsed_s": time.perf_counter() - self._t0,
            "messages": to_openai(self.messages),
        }
        end = trusted(EpisodeEnd, values) if _end_typed(values) else EpisodeEnd(**values)
        self.trajectory.end = end
        if self.recorders:
            await self._record(end, strict=False)
        return end

    def priced_usage(self) -> Usage:
        """The usage so far (a copy), with its cost when the agent has a price for its model."""
        if self.agent.prices is None:
            return usage_copy(self.usage)
        return priced(self.usage, self.agent.prices, self.agent.model.name)

    async def close_with(self, result: RunResult[OutputT]) -> RunResult[OutputT]:
        """Close the episode with ``result`` (its status, output, error and the failure
        attribution of its status); a recorder failing on the end record makes it ``failed``."""
        errors = len(self.record_errors)
        await self.finish(
            status=result.status,
            output=result.output,
            error=result.error,
            failure=failure_attribution(result.status),
            termination_reason=result.status.value,
        )
        if len(self.record_errors) > errors and result.status is not EpisodeStatus.FAILED:
            result.status = EpisodeStatus.FAILED
            result.error = self.record_errors[-1]
        return result

    async def send(
        self, prompt: str | None, *, event_handler: EventHandler | None = None
    ) -> RunResult[OutputT]:
        """Add a user message (if any) and run turns until a final answer or a limit.

        Never raises but cancellation (after the episode is closed as ``cancelled``); an
        unexpected error closes the episode as ``failed`` and is returned as that status.
        ``awaiting_approval``: the run paused (``result.state``); :meth:`resume` goes on, and
        ``send`` raises ``RuntimeError`` until then."""
        return await self._send_turns(prompt, event_handler)

    def _send_turns(
        self, prompt: str | None, event_handler: EventHandler | None
    ) -> Coroutine[Any, Any, RunResult[OutputT]]:
        """What :meth:`send` awaits (``Agent.run`` awaits it itself, one coroutine fewer)."""
        if self.paused is not None:
            raise RuntimeError("the conversation awaits approval: resume it with decisions first")
        self._first_new = len(self.messages)
        self._output_failures = 0
        self._turn_limit = self.turn + self.agent.max_turns
        return self._guarded(event_handler or _ignore, prompt)

    async def resume(
        self, decisions: Decisions, *, event_handler: EventHandler | None = None
    ) -> RunResult[OutputT]:
        """Go on with a run that paused for approval: ``decisions`` answer every pending call
        (``ValueError``/``TypeError`` before anything is recorded if they do not). The paused
        turn's calls then run (approved, edited or denied), and the turns go on as in
        :meth:`send`; the run may pause again."""
        state = self.paused
        if state is None:
            raise RuntimeError("the conversation is not awaiting approval")
        by_id = check_decisions(state.pending, decisions)
        self.paused = None
        return await self._guarded(event_handler or _ignore, None, (state, by_id))

    async def _resume_turn(
        self, state: RunState, by_id: dict[str, ApprovalDecision], emit: EventHandler
    ) -> RunResult[OutputT]:
        """Record the decisions, run the paused turn's calls through them, go on."""
        payload = [d.model_dump(mode="json") for d in by_id.values()]
        await self._record_approval(state.turn, "decided", payload)
        gate = CallGate(self.agent.before_tool_call, self.agent.after_tool_call, by_id)
        final = await run_tools(
            self, state.calls, state.malformed, state.turn, self._listener(emit), gate
        )
        if emit is not _ignore:
            await self._turn_end(emit, state.turn, state.finish_reason)
        if final is not None:
            return self._final_result(final)
        return await self._loop(emit)

    async def _guarded(
        self,
        emit: EventHandler,
        prompt: str | None,
        resumed: tuple[RunState, dict[str, ApprovalDecision]] | None = None,
    ) -> RunResult[OutputT]:
        """Start the turns with ``prompt`` (or go on with a paused turn's decisions) and run
        them: cancellation closes the episode ``cancelled`` and goes on; any other error
        closes it ``failed`` and is returned as that status. The collector runs with the
        runs' thresholds meanwhile (:func:`agentkit.gc_tuning.run_gc`)."""
        try:
            with run_gc():
                if resumed is None:
                    await self._start_turns(prompt)
                    result = await self._loop(emit)
                else:
                    result = await self._resume_turn(resumed[0], resumed[1], emit)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await self.finish(status=EpisodeStatus.CANCELLED, termination_reason="cancelled")
            raise
        except Exception as exc:
            error = describe_exception(exc)
            with anyio.CancelScope(shield=True):
                await self.finish(
                    status=EpisodeStatus.FAILED,
                    error=error,
                    failure=failure_attribution(EpisodeStatus.FAILED),
                    termination_reason="exception",
                )
            result = self._result(EpisodeStatus.FAILED, None, "", error)
        result.new_messages = self.messages[self._first_new :]
        return result

    async def _start_turns(self, prompt: str | None) -> None:
        if self.trajectory.end is not None:
            raise RuntimeError(
                f"the episode is already closed ({self.trajectory.end.status.value})"
            )
        if prompt is not None:
            if self._started and self._announced_user != prompt:
                # later user turns are environment steps (the first is in the episode's prompt)
                await self.record_env_step("user", prompt)
            self._announced_user = None
            self.messages.append(user_message(prompt))
        if not self._started and not self.trajectory.start.prompt_messages:
            self.trajectory.start.prompt_messages = to_openai(self.messages)
        await self._ensure_started()

    def _result(
        self,
        status: EpisodeStatus,
        output: Any,
        text: str,
        error: str | None = None,
    ) -> RunResult[OutputT]:
        return RunResult(
            status=status,
            output=output,
            text=text,
            messages=list(self.messages),
            usage=self.priced_usage(),
            trajectory=self.trajectory,
            turns=self.turn,
            error=error,
            state=self.paused,
        )

    async def _loop(self, emit: EventHandler) -> RunResult[OutputT]:
        agent = self.agent
        # once per run, not per turn: whether a call may need approval, the turn's gate (the
        # agent's hooks), who hears of tool calls
        tools = agent.tools_by_name
        approvals = any(
            t.requires_approval is not False or type(t).needs_approval is not Tool.needs_approval
            for t in tools.values()
        )
        gate = CallGate(agent.before_tool_call, agent.after_tool_call)
        listener = self._listener(emit)
        heard = emit is not _ignore
        # the same for every turn of this run: read once
        session = self._session  # None: the first call raises what the model gave
        episode_id = self.episode_id
        calls_made = self.trajectory.calls
        limit = agent.max_tool_calls_per_turn
        while self.turn < self._turn_limit:
            turn = self.turn
            self.turn += 1
            request = ModelRequest.of(
                tool_choice="auto",
                messages=self.messages,
                tools=agent.tool_schemas,
                thinking=self.thinking,
                settings=agent.settings,
                episode_id=episode_id,
                turn=turn,
                call_index=self._calls_before + len(calls_made),
            )
            on_delta = delta_forwarder(emit, turn) if heard else None
            try:
                if session is None:
                    session = self.session
                response = await session.generate(request, on_delta=on_delta)
            except ModelError as exc:
                return await self._model_failed(exc, request)
            record = response.record
            calls_made.append(record)
            self.usage.add_call(record)
            if self.recorders:
                await self._record(record)
            message = response.message
            self.messages.append(message)

            calls = message.tool_calls  # read, never changed
            if limit is not None and len(calls) > limit:
                # Keep only the first calls, as tau-bench does; the record keeps the raw output.
                calls = calls[:limit]
                message = message.model_copy(update={"tool_calls": calls})
                self.messages[-1] = message
            if response.finish_reason == "length":
                # the reply was cut: a call in it may be cut too, so none of them is run
                await self._turn_end(emit, turn, response.finish_reason)
                cut = f"; its {len(calls)} tool call(s) were not run" if calls else ""
                error = f"the reply hit the token limit (finish_reason=length){cut}"
                return self._result(EpisodeStatus.TRUNCATED, None, message.content.strip(), error)
            if calls or response.malformed_calls:
                malformed, reason = response.malformed_calls, response.finish_reason
                pending = pending_approvals(calls, tools) if approvals else None
                if pending:
                    return await self._pause(turn, list(calls), malformed, pending, reason)
                final = await run_tools(self, calls, malformed, turn, listener, gate)
                if heard:
                    await self._turn_end(emit, turn, reason)
                if final is not None:
                    return self._final_result(final)
                continue
            await self._turn_end(emit, turn, response.finish_reason)
            text = message.content.strip()
            if agent.output_type is None:
                return self._result(EpisodeStatus.COMPLETED, text, text)
            try:
                value = validate_output(agent.output_type, text)
            except OutputInvalid as exc:
                self._output_failures += 1
                if self._output_failures > agent.output_retries:
                    return self._result(
                        EpisodeStatus.OUTPUT_INVALID, None, text, f"final answer invalid: {exc}"
                    )
                retry = retry_prompt(agent.output_type, exc)
                await self.record_env_step("user", retry)
                self._announced_user = None
                self.messages.append(user_message(retry))
                continue
            return self._result(EpisodeStatus.COMPLETED, value, text)
        return self._result(
            EpisodeStatus.MAX_TURNS,
            None,
            final_text(self.messages[-1]) if self.messages else "",
            f"stopped after max_turns={agent.max_turns} model calls without a final answer",
        )

    @staticmethod
    def _listener(emit: EventHandler) -> EventHandler | None:
        """Who hears of each tool call and result: ``None`` when nobody listens."""
        return emit if emit is not _ignore else None

    def _final_result(self, final: Any) -> RunResult[OutputT]:
        """The run ended by a successful ``final_result`` call: its text is the last reply's."""
        last = [m for m in self.messages if m.role == "assistant"]
        return self._result(EpisodeStatus.COMPLETED, final, final_text(last[-1]) if last else "")

    async def _pause(
        self,
        turn: int,
        calls: list[ToolCall],
        malformed: list[str],
        pending: list[PendingCall],
        finish_reason: str,
    ) -> RunResult[OutputT]:
        """Stop before the turn's calls run: record the pause, keep the state to resume from."""
        await self._record_approval(turn, "awaiting_approval", [p.model_dump() for p in pending])
        self._pauses += 1
        self.paused = paused_state(self, turn, calls, malformed, pending, finish_reason)
        names = ", ".join(f"{p.tool} ({p.id})" for p in pending)
        text = final_text(self.messages[-1])
        return self._result(
            EpisodeStatus.AWAITING_APPROVAL, None, text, f"waiting for approval of {names}"
        )

    async def _record_approval(self, turn: int, status: str, payload: list[Any]) -> None:
        record = approval_step(self.episode_id, self._next_step(), turn, status, payload)
        self.trajectory.steps.append(record)
        await self._record(record)

    async def _turn_end(self, emit: EventHandler, turn: int, finish_reason: str) -> None:
        if emit is not _ignore:
            await emit(TurnEnd(turn=turn, finish_reason=finish_reason, usage=self.usage))

    async def _model_failed(self, exc: ModelError, request: ModelRequest) -> RunResult[OutputT]:
        """Record the failed call (every attempt, with its cause) and end ``model_error``."""
        record = exc.record
        if record is None:  # a backend that does not build one: keep the attempts anyway
            mode = "tokens" if self.agent.model.mode == "tokens" else "chat"
            record = failed_call_record(request, CallInput(mode=mode), exc, CallClock())
        self.trajectory.calls.append(record)
        await self._record(record)
        return self._result(EpisodeStatus.MODEL_ERROR, None, "", str(exc))


async def _ignore(event: RunEvent) -> None:
    return None


def usage_copy(usage: Usage) -> Usage:
    """``usage.model_copy()`` (what ``priced`` gives without prices), built directly: the
    same ``__dict__`` copy and a fields set of its own (tests/loop/test_step_path_trusted.py)."""
    if type(usage) is not Usage or usage.__pydantic_extra__ or usage.__pydantic_private__:
        return usage.model_copy()
    return assemble(Usage, dict(usage.__dict__), set(usage.__pydantic_fields_set__))


_OPTIONAL_TEXT = (str, type(None))
_OPTIONAL_FAILURE = (FailureAttribution, type(None))


def _end_typed(values: dict[str, Any]) -> bool:
    """Whether an episode end's values are what validation would store as they are: each of
    exactly its field's type, the rewards unset (validation would copy a caller's
    dictionaries), the messages the loop's own fresh dictionaries (to_openai)."""
    return (
        type(values["episode_id"]) is str
        and type(values["status"]) is EpisodeStatus
        and type(values["termination_reason"]) is str
        and type(values["failure"]) in _OPTIONAL_FAILURE
        and type(values["error"]) in _OPTIONAL_TEXT
        and values["reward"] is None
        and all(
            type(values[name]) is dict and not values[name]
            for name in ("reward_components", "turn_rewards", "tool_rewards")
        )
        and type(values["usage"]) is Usage
        and type(values["elapsed_s"]) is float
    )
