"""The objects the loop builds without validating them (``model_construct``) are exactly what a
validated construction gives: the same values of the same types, the same fields set, the same
JSON in the store, and nothing dropped.

Two checks: every record and message of real episodes (against the protocol-faithful test
server, streamed and not) is rebuilt field by field through pydantic and compared; and the
first model call, tool step and tool message are compared with records written out here from
what the server answered, so a field the loop forgot to pass fails too.
"""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from agentkit import Agent, EpisodeStatus, tool
from agentkit.dialects.glm45 import format_assistant
from agentkit.events import RunEvent
from agentkit.messages import AssistantMessage, Message, ToolCall, ToolMessage, UserMessage
from agentkit.models import SGLangChat
from agentkit.models.base import ModelRequest, ModelSettings
from agentkit.testing import SGLangTestServer
from agentkit.trajectory.recorder import MemoryRecorder
from agentkit.trajectory.records import Attempt, EnvStepRecord, ModelCallRecord, SharedParams, Usage
from agentkit.trajectory.store import JsonlStore

pytestmark = pytest.mark.anyio


@tool
def lookup(key: str) -> str:
    """Look a key up.

    Args:
        key: the key
    """
    return f"value of {key}"


@tool
def broken(key: str) -> str:
    """Always fails.

    Args:
        key: the key
    """
    raise ValueError(f"no {key}")


SCRIPT = [
    format_assistant("Look.", "", [("lookup", {"key": "a"}), ("broken", {"key": "b"})]),
    format_assistant("Again.", "", [("lookup", {}), ("nowhere", {})]),
    format_assistant("Done.", "the answer", []),
]


@pytest.fixture
async def server() -> AsyncIterator[SGLangTestServer]:
    async with SGLangTestServer(policy=list(SCRIPT)) as running:
        yield running


def assert_as_validated(obj: Any, where: str = "record") -> None:
    """``obj`` and everything in it is what pydantic builds from the same given fields."""
    if isinstance(obj, BaseModel):
        given = {name: getattr(obj, name) for name in obj.model_fields_set}
        rebuilt = type(obj)(**given)
        for name, info in type(obj).model_fields.items():
            if name not in given and info.default_factory is not None:
                assert type(rebuilt.__dict__[name]) is type(obj.__dict__[name]), f"{where}.{name}"
                rebuilt.__dict__[name] = obj.__dict__[name]  # a per-instance default (a clock)
        assert rebuilt.model_fields_set == obj.model_fields_set, where
        assert rebuilt.model_dump_json() == obj.model_dump_json(), where
        assert rebuilt.__dict__.keys() == obj.__dict__.keys(), where
        for name, value in obj.__dict__.items():
            # a shared read-only sampling_params (records.SharedParams) reads as the dict
            kind = dict if type(value) is SharedParams else type(value)
            assert kind is type(rebuilt.__dict__[name]), f"{where}.{name}"
            assert value == rebuilt.__dict__[name], f"{where}.{name}"
            assert_as_validated(value, f"{where}.{name}")
    elif isinstance(obj, list | tuple):
        for i, item in enumerate(obj):
            assert_as_validated(item, f"{where}[{i}]")
    elif isinstance(obj, dict):
        for key, item in obj.items():
            assert_as_validated(item, f"{where}[{key!r}]")


async def _run(server: SGLangTestServer, *, stream: bool, tmp: Path) -> tuple[Any, Any, Path]:
    recorder = MemoryRecorder()
    path = tmp / f"records-{stream}.jsonl"
    store = JsonlStore(str(path))

    async def handler(event: RunEvent) -> None:
        return None

    try:
        agent: Agent[None, str] = Agent(
            model=SGLangChat(server.base_url), tools=[lookup, broken], recorder=store
        )
        async with agent:
            result = await agent.run(
                "go", recorder=recorder, event_handler=handler if stream else None
            )
    finally:
        store.close()
    return result, recorder, path


@pytest.mark.parametrize("stream", [False, True])
async def test_every_record_and_message_is_what_validation_gives(
    server: SGLangTestServer, stream: bool, tmp_path: Path
) -> None:
    result, recorder, path = await _run(server, stream=stream, tmp=tmp_path)
    assert result.status is EpisodeStatus.COMPLETED and result.output == "the answer"
    calls = [r for r in recorder.items if isinstance(r, ModelCallRecord)]
    steps = [r for r in recorder.items if isinstance(r, EnvStepRecord)]
    assert len(calls) == 3 and len(steps) == 4
    assert {s.status for s in steps} == {"ok", "error", "invalid_arguments", "unknown_tool"}
    for i, item in enumerate(recorder.items):
        assert_as_validated(item, f"items[{i}]")
    for i, message in enumerate(result.messages):
        assert_as_validated(message, f"messages[{i}]")
    # the store holds each record's own JSON, and it reads back as the same record
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    assert len(lines) == len(recorder.items)
    for line, item in zip(lines, recorder.items, strict=True):
        assert line == json.loads(item.model_dump_json())
        assert type(item).model_validate(line) == item


async def test_the_first_call_step_and_message_are_the_servers_reply(
    server: SGLangTestServer, tmp_path: Path
) -> None:
    result, recorder, _ = await _run(server, stream=False, tmp=tmp_path)
    call = next(r for r in recorder.items if isinstance(r, ModelCallRecord))
    answered = server.requests[0].response
    choice, usage = answered["choices"][0], answered["usage"]
    wire_calls = choice["message"]["tool_calls"]
    tool_calls = [
        ToolCall(
            id=c["id"],
            name=c["function"]["name"],
            arguments=json.loads(c["function"]["arguments"]),
            raw_arguments=c["function"]["arguments"],
        )
        for c in wire_calls
    ]
    attempt = call.attempts[0]
    spec = answered["sglext"]["spec_tokens_details"]["spec_verify_ct"]
    expected = ModelCallRecord(
        episode_id=result.trajectory.episode_id,
        index=0,
        turn=0,
        mode="chat",
        server=server.base_url,
        started_at=call.started_at,
        elapsed_s=call.elapsed_s,
        output_text=choice["message"]["content"],
        sampling_params={
            "model": "default",
            "max_tokens": call.sampling_params["max_tokens"],
            "stream": False,
            "chat_template_kwargs": {"enable_thinking": True},
            "separate_reasoning": True,
            "tool_choice": "auto",
            "return_spec_tokens_details": True,
        },
        finish_reason=choice["finish_reason"],
        matched_stop=choice.get("matched_stop"),
        prompt_tokens=usage["prompt_tokens"],
        completion_tokens=usage["completion_tokens"],
        cached_tokens=(usage.get("prompt_tokens_details") or {}).get("cached_tokens"),
        spec_verify_ct=spec,
        accept_length=usage["completion_tokens"] / spec,
        reasoning=choice["message"].get("reasoning_content"),
        content=choice["message"]["content"],
        tool_calls=tool_calls,
        attempts=[
            Attempt(
                number=1,
                server=server.base_url,
                started_at=attempt.started_at,
                elapsed_s=attempt.elapsed_s,
                ok=True,
                status_code=200,
            )
        ],
    )
    got, want = call.model_dump(mode="json"), expected.model_dump(mode="json")
    assert {k: v for k, v in got.items() if want[k] != v} == {}
    assert call.model_dump_json() == expected.model_dump_json()
    always = {"episode_id", "index", "turn", "mode", "server", "started_at", "elapsed_s"}
    given = {k for k in expected.model_fields_set if getattr(expected, k) not in (None, "", [], {})}
    assert call.model_fields_set == always | given  # the record passes no default
    assert call.attempts[0].model_fields_set == expected.attempts[0].model_fields_set

    assistant = result.messages[1]
    assert assistant == AssistantMessage(
        content=expected.content, reasoning_content=expected.reasoning, tool_calls=tool_calls
    )
    step = next(r for r in recorder.items if isinstance(r, EnvStepRecord))
    assert step == EnvStepRecord(
        episode_id=expected.episode_id,
        index=0,
        turn=0,
        step_type="tool",
        call=tool_calls[0],
        status="ok",
        raw_output_chars=len("value of a"),
        output="value of a",
        latency_s=step.latency_s,
        started_at=step.started_at,
    )
    assert step.model_fields_set == {
        "episode_id", "index", "turn", "step_type", "call", "status", "error", "error_type",
        "raw_output_chars", "output", "truncated", "latency_s", "started_at",
    }  # fmt: skip
    message = result.messages[2]
    assert isinstance(message, ToolMessage)
    assert (
        message.model_dump()
        == ToolMessage(
            tool_call_id=tool_calls[0].id, name="lookup", content="value of a", is_error=False
        ).model_dump()
    )
    assert message.model_fields_set == {"tool_call_id", "name", "content", "is_error"}


def test_usage_counts_are_what_assignment_gives() -> None:
    """``Usage.add_call``/``add_tool_calls`` write the fields directly: the same values and
    fields set as pydantic's attribute assignment."""
    record = ModelCallRecord(
        episode_id="e", index=0, turn=0, mode="chat", prompt_tokens=7, completion_tokens=3,
        cached_tokens=2, spec_verify_ct=2,
    )  # fmt: skip
    fast, assigned = Usage(), Usage()
    for _ in range(2):
        fast.add_call(record)
        fast.add_tool_calls(1)
        assigned.requests += 1
        assigned.prompt_tokens += 7
        assigned.completion_tokens += 3
        assigned.cached_tokens += 2
        assigned.spec_verify_ct += 2
        assigned.tool_calls += 1
    assert fast == assigned and fast.model_fields_set == assigned.model_fields_set
    assert fast.model_dump_json() == assigned.model_dump_json()
    assert_as_validated(fast)


def test_the_loops_request_is_what_model_construct_gives() -> None:
    messages: list[Message] = [UserMessage(content="go")]
    given: dict[str, Any] = {
        "messages": messages,
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "tool_choice": "auto",
        "thinking": False,
        "settings": ModelSettings(temperature=0.5),
        "episode_id": "ep",
        "turn": 3,
        "call_index": 4,
    }
    fast, constructed = ModelRequest.of(**given), ModelRequest.model_construct(**given)
    assert fast == constructed and fast.model_fields_set == constructed.model_fields_set
    assert list(fast.__dict__) == list(constructed.__dict__)
    assert fast.messages is messages  # the conversation's list, as model_construct keeps it
    assert fast.model_dump_json() == ModelRequest(**given).model_dump_json()
    assert_as_validated(fast)


async def test_records_share_their_fields_sets_and_assignment_does_not_leak(
    server: SGLangTestServer, tmp_path: Path
) -> None:
    """Records given the same fields share one fields set (memory); assigning a field of one,
    or copying it, never changes what another says was set."""
    _, recorder, _ = await _run(server, stream=False, tmp=tmp_path)
    steps = [r for r in recorder.items if isinstance(r, EnvStepRecord)]
    calls = [r for r in recorder.items if isinstance(r, ModelCallRecord)]
    assert len({id(s.__pydantic_fields_set__) for s in steps}) == 1
    attempts = [c.attempts[0] for c in calls]
    assert len({id(a.__pydantic_fields_set__) for a in attempts}) == 1
    first, second = steps[0], steps[1]
    before = set(second.model_fields_set)
    first.sandbox = "box"
    assert "sandbox" in first.model_fields_set and second.model_fields_set == before
    assert second.model_dump(exclude_unset=True).keys() == before
    copied = second.model_copy(update={"appended_ids": [1]})
    assert "appended_ids" in copied.model_fields_set and second.model_fields_set == before
    deep = copy.deepcopy(second)
    deep.sandbox = "other"
    assert second.model_fields_set == before and steps[2].model_fields_set == before
    revived = pickle.loads(pickle.dumps(second))
    revived.sandbox = "again"
    assert second.model_fields_set == before and revived == second.model_copy(
        update={"sandbox": "again"}
    )


async def test_messages_share_their_fields_sets_and_assignment_does_not_leak(
    server: SGLangTestServer, tmp_path: Path
) -> None:
    result, _, _ = await _run(server, stream=False, tmp=tmp_path)
    results = [m for m in result.messages if isinstance(m, ToolMessage)]
    replies = [m for m in result.messages if isinstance(m, AssistantMessage)]
    calls = [c for m in replies for c in m.tool_calls]
    assert len(results) == 4 and len(replies) == 3 and len(calls) == 4
    for group in (results, replies, calls):
        assert len({id(m.__pydantic_fields_set__) for m in group}) == 1
    # assign a field none of them was given: only the assigned message's set may gain it
    for group in (results, replies):
        before = set(group[1].model_fields_set)
        unset = next(name for name in type(group[0]).model_fields if name not in before)
        setattr(group[0], unset, getattr(group[0], unset))
        assert unset in group[0].model_fields_set
        assert group[1].model_fields_set == before
        assert group[1].model_dump(exclude_unset=True).keys() == before
        # changing a shared set in place is refused, and changes nothing
        with pytest.raises(TypeError, match="shared"):
            group[1].model_fields_set.add(unset)
        assert group[2].model_fields_set == before
    edited = calls[1].model_copy(update={"parse_error": "x"})
    assert "parse_error" in edited.model_fields_set
    assert "parse_error" not in calls[2].model_fields_set
