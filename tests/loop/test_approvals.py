"""Approvals and hooks in one process, against the SGLang test server (chat and token mode).

A tool that requires approval pauses the run before the turn's calls run; ``resume`` goes on
with decisions (approve / deny / edit). Hooks allow, deny, edit, short-circuit and replace.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from agentkit import Agent, EpisodeStatus, RunContext, Tool, ToolOutcome, ToolStatus, tool
from agentkit.approvals import ApprovalDecision
from agentkit.dialects.glm45 import format_assistant
from agentkit.events import FinalEvent, ToolResultEvent
from agentkit.hooks import Deny, EditArguments, ShortCircuit
from agentkit.messages import ToolCall, ToolMessage
from agentkit.models import SGLangChat
from agentkit.models.sglang_tokens import SGLangTokens
from agentkit.run_state import RunState, TokenContext
from agentkit.trajectory.exports import exclusion_reason
from agentkit.trajectory.recorder import MemoryRecorder
from agentkit.trajectory.records import EnvStepRecord, EpisodeEnd, EpisodeStart
from agentkit.trajectory.store import JsonlStore, read_store
from tests.loop.run_support import (
    StartServer,
    mail_tools,
    make_model,
    without_call_ids,
)

pytestmark = pytest.mark.anyio


def turn(content: str, *calls: tuple[str, dict[str, Any]]) -> str:
    return format_assistant("Thinking.", content, list(calls), thinking=True)


SCRIPT = [
    turn(
        "Checking.", ("lookup", {"city": "Paris"}), ("send_email", {"to": "a@x.org", "body": "hi"})
    ),
    turn("Sent.", ("lookup", {"city": "Oslo"})),
    turn("All done."),
]


def make_tools(sent: list[dict[str, Any]], *, approval: bool = True) -> list[Tool]:
    return mail_tools(sent.append, approval=approval)


def normalized(messages: list[Any]) -> list[dict[str, Any]]:
    return without_call_ids([m.model_dump(mode="json") for m in messages])


@pytest.mark.parametrize("mode", ["chat", "tokens"])
async def test_pause_then_approve_matches_an_uninterrupted_run(
    mode: str, server_factory: StartServer, tokenizer_path: Path
) -> None:
    paused_server = await server_factory(list(SCRIPT))
    sent: list[dict[str, Any]] = []
    recorder = MemoryRecorder()
    agent = Agent(
        make_model(mode, paused_server.base_url, tokenizer_path),
        tools=make_tools(sent),
        recorder=recorder,
    )
    async with agent:
        first = await agent.run("Weather, then mail?")
        assert first.status is EpisodeStatus.AWAITING_APPROVAL and first.awaiting_approval
        assert first.state is not None and not sent
        assert [(p.tool, p.arguments) for p in first.state.pending] == [
            ("send_email", {"to": "a@x.org", "body": "hi"})
        ]
        # no tool of the paused turn ran, and the episode is not closed
        assert not any(isinstance(m, ToolMessage) for m in first.messages)
        assert not any(isinstance(r, EpisodeEnd) for r in recorder.items)
        state = RunState.model_validate_json(first.state.model_dump_json())
        decision = ApprovalDecision.approve(state.pending[0].id)
        final = await agent.resume(state, [decision])
    assert final.status is EpisodeStatus.COMPLETED, final.error
    assert final.text == "All done." and sent == [{"to": "a@x.org", "body": "hi"}]
    assert final.usage.requests == 3 and final.usage.tool_calls == 3

    plain_server = await server_factory(list(SCRIPT))
    plain = Agent(
        make_model(mode, plain_server.base_url, tokenizer_path),
        tools=make_tools([], approval=False),
    )
    async with plain:
        reference = await plain.run("Weather, then mail?")
    assert reference.ok
    assert normalized(final.messages) == normalized(reference.messages)
    if mode == "tokens":
        wire = [r.request["input_ids"] for r in paused_server.generation_requests()]
        assert wire == [r.request["input_ids"] for r in plain_server.generation_requests()]
        for before, after in itertools.pairwise(paused_server.generation_requests()):
            held = before.request["input_ids"] + before.response["output_ids"]
            assert after.request["input_ids"][: len(held)] == held  # append-only across the pause

    # one continuous episode: one start, one end, the pause and the decision in between
    ids = {getattr(r, "episode_id", None) for r in recorder.items}
    assert ids == {first.episode_id}
    kinds = [type(r).__name__ for r in recorder.items]
    assert kinds.count("EpisodeStart") == 1 and kinds.count("EpisodeEnd") == 1
    approvals = [
        r for r in recorder.items if isinstance(r, EnvStepRecord) and r.step_type == "approval"
    ]
    assert [a.status for a in approvals] == ["awaiting_approval", "decided"]
    steps = [r for r in recorder.items if isinstance(r, EnvStepRecord)]
    assert [s.index for s in steps] == list(range(len(steps)))
    calls = [r.index for r in recorder.items if type(r).__name__ == "ModelCallRecord"]
    assert calls == [0, 1, 2]
    end = recorder.items[-1]
    assert isinstance(end, EpisodeEnd) and end.usage.requests == 3


async def test_deny_and_edit_decisions(server_factory: StartServer, tokenizer_path: Path) -> None:
    script = [
        turn("", ("send_email", {"to": "a@x.org", "body": "one"})),
        turn("", ("send_email", {"to": "b@x.org", "body": "two"})),
        turn("Finished."),
    ]
    server = await server_factory(script)
    sent: list[dict[str, Any]] = []
    recorder = MemoryRecorder()
    agent = Agent(
        SGLangTokens(server.base_url, tokenizer_path), tools=make_tools(sent), recorder=recorder
    )
    async with agent:
        first = await agent.run("Mail twice")
        assert first.state is not None
        call_id = first.state.pending[0].id
        second = await agent.resume(first.state, [ApprovalDecision.deny(call_id, "not today")])
        assert second.status is EpisodeStatus.AWAITING_APPROVAL and second.state is not None
        assert second.state.pauses == 2
        edit = ApprovalDecision.edit(second.state.pending[0].id, {"to": "c@x.org", "body": "two"})
        final = await agent.resume(second.state.model_dump_json(), {edit.call_id: edit})
    assert final.ok, final.error
    assert sent == [{"to": "c@x.org", "body": "two"}]
    results = [m for m in final.messages if isinstance(m, ToolMessage)]
    assert results[0].is_error and "not today" in results[0].content
    assert results[1].content == "sent to c@x.org" and not results[1].is_error
    steps = [r for r in recorder.items if isinstance(r, EnvStepRecord) and r.step_type == "tool"]
    assert steps[0].status == ToolStatus.DENIED.value
    # the record keeps the call as it ran (edited); the model's message keeps what it wrote
    assert steps[1].call is not None and steps[1].call.arguments["to"] == "c@x.org"
    assert next(r for r in recorder.items if isinstance(r, EpisodeEnd)).status == "completed"


async def test_decisions_must_answer_exactly_the_pending_calls(
    server_factory: StartServer, tokenizer_path: Path
) -> None:
    server = await server_factory([turn("", ("send_email", {"to": "a@x.org", "body": "x"}))])
    recorder = MemoryRecorder()
    agent = Agent(
        SGLangTokens(server.base_url, tokenizer_path), tools=make_tools([]), recorder=recorder
    )
    async with agent:
        first = await agent.run("Mail")
        assert first.state is not None
        before = len(recorder.items)
        with pytest.raises(ValueError, match="no decision"):
            await agent.resume(first.state, [])
        with pytest.raises(ValueError, match="not pending"):
            await agent.resume(first.state, [ApprovalDecision.approve("call_nope")])
        with pytest.raises(ValueError, match="needs the new arguments"):
            ApprovalDecision(call_id="x", action="edit")
        chat = Agent(SGLangChat(server.base_url), tools=make_tools([]))
        with pytest.raises(ValueError, match="tokens mode"):
            await chat.resume(first.state, [ApprovalDecision.approve(first.state.pending[0].id)])
        await chat.aclose()
        assert len(recorder.items) == before  # nothing recorded by a refused resume


async def test_approval_predicate_over_arguments(
    server_factory: StartServer, tokenizer_path: Path
) -> None:
    ran: list[int] = []

    @tool(requires_approval=lambda args: args.get("amount", 0) > 100)
    def transfer(amount: int) -> str:
        """Move money.

        Args:
            amount: Dollars.
        """
        ran.append(amount)
        return "ok"

    script = [turn("", ("transfer", {"amount": 50})), turn("", ("transfer", {"amount": 500}))]
    server = await server_factory([*script, turn("Done.")])
    agent = Agent(SGLangTokens(server.base_url, tokenizer_path), tools=[transfer])
    async with agent:
        result = await agent.run("Pay")
        assert result.status is EpisodeStatus.AWAITING_APPROVAL and ran == [50]
        assert result.state is not None and result.state.pending[0].arguments == {"amount": 500}
        final = await agent.resume(
            result.state, [ApprovalDecision.approve(result.state.pending[0].id)]
        )
    assert final.ok and ran == [50, 500]


def test_a_raising_predicate_fails_closed() -> None:
    def broken(args: dict[str, Any]) -> bool:
        raise KeyError("amount")

    @tool(requires_approval=broken)
    def pay(amount: int) -> str:
        """Pay."""
        return "paid"

    reason = pay.needs_approval({"amount": 1})
    assert reason is not None and "KeyError" in reason
    with pytest.raises(TypeError):
        Tool("x", "", {}, pay.handler, requires_approval="yes")  # type: ignore[arg-type]


async def test_hooks_deny_edit_short_circuit_and_replace(
    server_factory: StartServer, tokenizer_path: Path
) -> None:
    script = [
        turn(
            "",
            ("lookup", {"city": "Paris"}),
            ("lookup", {"city": "Rome"}),
            ("lookup", {"city": "Oslo"}),
            ("lookup", {"city": "Bern"}),
            ("lookup", {"city": "Kyiv"}),
        ),
        turn("Done."),
    ]
    server = await server_factory(script)
    seen: list[str] = []

    def before(call: ToolCall, ctx: RunContext[Any]) -> Any:
        seen.append(f"before:{call.arguments['city']}")
        city = call.arguments["city"]
        if city == "Rome":
            return Deny(message="no Rome")
        if city == "Oslo":
            return EditArguments(arguments={"city": "Bergen"})
        if city == "Bern":
            return ShortCircuit(output={"cached": True})
        if city == "Kyiv":
            raise RuntimeError("hook broke")
        return None

    async def after(call: ToolCall, outcome: ToolOutcome, ctx: RunContext[Any]) -> Any:
        seen.append(f"after:{call.arguments['city']}")
        if call.arguments["city"] == "Paris":
            return outcome.model_copy(update={"output": outcome.output + " (checked)"})
        return None

    tools = make_tools([])
    agent = Agent(
        SGLangTokens(server.base_url, tokenizer_path),
        tools=tools,
        before_tool_call=before,
        after_tool_call=after,
    )
    async with agent:
        result = await agent.run("Weather")
    assert result.ok, result.error
    outputs = [m.content for m in result.messages if isinstance(m, ToolMessage)]
    assert outputs[0] == "Paris: 21C (checked)"
    assert "denied" in outputs[1] and "no Rome" in outputs[1]
    assert outputs[2] == "Bergen: 21C"
    assert json.loads(outputs[3]) == {"cached": True}
    assert "hook broke" in outputs[4] and "before_tool_call" in outputs[4]
    tool_steps = [s for s in result.trajectory.steps if s.step_type == "tool"]
    assert [s.status for s in tool_steps] == ["ok", "denied", "ok", "ok", "error"]
    assert tool_steps[4].error_type == "HookError"
    assert sorted(seen) == sorted(
        [f"before:{c}" for c in ("Paris", "Rome", "Oslo", "Bern", "Kyiv")]
        + ["after:Paris", "after:Rome", "after:Bergen", "after:Bern", "after:Kyiv"]
    )
    with pytest.raises(TypeError, match="before_tool_call"):
        Agent(SGLangTokens(server.base_url, tokenizer_path), before_tool_call="no")  # type: ignore[arg-type]


async def test_paused_episode_is_visible_and_kept_out_of_exports(
    server_factory: StartServer, tokenizer_path: Path, tmp_path: Path
) -> None:
    server = await server_factory([turn("", ("send_email", {"to": "a@x.org", "body": "x"}))])
    path = tmp_path / "store.jsonl"
    with JsonlStore(path) as store:
        agent = Agent(
            SGLangTokens(server.base_url, tokenizer_path), tools=make_tools([]), recorder=store
        )
        async with agent:
            result = await agent.run("Mail")
    contents = read_store(path)
    (traj,) = contents.unfinished
    assert traj.episode_id == result.episode_id and exclusion_reason(traj) == "unfinished"
    pause = [s for s in traj.steps if s.step_type == "approval"]
    assert pause[0].status == "awaiting_approval"
    assert json.loads(pause[0].output)[0]["tool"] == "send_email"
    # an episode closed while awaiting approval (e.g. by a rollout) is never trained on
    end = EpisodeEnd(episode_id=traj.episode_id, status=EpisodeStatus.AWAITING_APPROVAL)
    assert exclusion_reason(traj.model_copy(update={"end": end})) == "awaiting approval"
    assert isinstance(traj.start, EpisodeStart)


def test_token_context_is_compact_and_exact() -> None:
    ids = [151331, 0, 7, 151336, *list(range(1000, 5000))]
    context = TokenContext.encode({"ids": ids, "consumed": 3, "last_stop": "<|observation|>"})
    assert context.ids() == ids and context.consumed == 3
    assert len(context.ids_b64) < len(json.dumps(ids)) // 2
    broken = context.model_copy(update={"count": 5})
    with pytest.raises(ValueError, match="holds"):
        broken.ids()


async def test_a_conversation_pauses_and_resumes_in_place(
    server_factory: StartServer, tokenizer_path: Path
) -> None:
    server = await server_factory(list(SCRIPT))
    sent: list[dict[str, Any]] = []
    recorder = MemoryRecorder()
    agent = Agent(SGLangChat(server.base_url), tools=make_tools(sent), recorder=recorder)
    async with agent:
        conv = agent.conversation()
        first = await conv.send("Weather, then mail?")
        assert first.awaiting_approval and first.state is not None
        with pytest.raises(RuntimeError, match="awaits approval"):
            await conv.send("hello?")
        events: list[str] = []

        async def on_event(event: Any) -> None:
            events.append(event.type)

        decision = ApprovalDecision.approve(first.state.pending[0].id)
        final = await conv.resume([decision], event_handler=on_event)
        assert final.ok and final.text == "All done." and sent
        with pytest.raises(RuntimeError, match="not awaiting"):
            await conv.resume([decision])
        await conv.close_with(final)
    assert "tool_result" in events and events.count("turn_end") == 3
    assert [type(r).__name__ for r in recorder.items].count("EpisodeEnd") == 1


async def test_a_stream_ends_with_the_paused_result(
    server_factory: StartServer, tokenizer_path: Path
) -> None:
    server = await server_factory(list(SCRIPT))
    agent = Agent(SGLangTokens(server.base_url, tokenizer_path), tools=make_tools([]))
    async with agent:
        events = [event async for event in agent.stream("Weather, then mail?")]
    final = events[-1]
    assert isinstance(final, FinalEvent)
    assert final.run_result.status is EpisodeStatus.AWAITING_APPROVAL
    assert final.run_result.state is not None
    assert not any(isinstance(e, ToolResultEvent) for e in events)


async def test_a_rollout_episode_that_needs_approval_is_not_counted_complete(
    server_factory: StartServer, tokenizer_path: Path, tmp_path: Path
) -> None:
    from agentkit.rollout import RolloutTask, complete_pairs, rollout

    server = await server_factory(lambda request: SCRIPT[0])
    agent = Agent(SGLangTokens(server.base_url, tokenizer_path), tools=make_tools([]))
    store = tmp_path / "run.jsonl"
    async with agent:
        task = RolloutTask(id="t0", prompt="Weather, then mail?")
        report = await rollout(
            lambda t: agent, [task], store=store, progress=False, max_sample_retries=0
        )
    assert report.completed == 0 and "waiting for approval" in report.failures[0].error
    (traj,) = read_store(store).episodes
    assert traj.end is not None and traj.end.status is EpisodeStatus.AWAITING_APPROVAL
    assert exclusion_reason(traj) == "awaiting approval"
    assert complete_pairs(store) == set()  # a rerun runs it again
