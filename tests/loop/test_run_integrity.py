"""Nothing but cancellation escapes a run: a tool result that cannot be shown, a raising event
handler or recorder, a crashing output validator or model backend each end as a typed outcome
with the error in the record, never as an exception to the caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import BaseModel, field_validator

from agentkit import Agent, EpisodeStatus, tool
from agentkit.dialects.glm45 import format_assistant
from agentkit.events import RunEvent, ToolResultEvent
from agentkit.messages import ToolMessage
from agentkit.models import SGLangChat
from agentkit.models.base import ModelRequest
from agentkit.testing import SGLangTestServer
from agentkit.tool import RunContext, Tool, ToolOutcome, ToolStatus
from agentkit.trajectory.recorder import MemoryRecorder, Record
from agentkit.trajectory.records import EpisodeEnd, FailureAttribution

pytestmark = pytest.mark.anyio


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")

    __repr__ = __str__


@tool
def odd() -> Any:
    """Returns something that cannot be shown."""
    return Unprintable()


@tool
def fine(q: str) -> str:
    """Echo.

    Args:
        q: text
    """
    return q


def _call(name: str, **arguments: Any) -> str:
    return format_assistant("Call.", "", [(name, arguments)])


def _answer(text: str) -> str:
    return format_assistant("Answer.", text, [])


@pytest.fixture
async def serve() -> AsyncIterator[Any]:
    servers: list[SGLangTestServer] = []

    async def start(script: list[str]) -> SGLangTestServer:
        server = SGLangTestServer(policy=script)
        await server.__aenter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.__aexit__(None, None, None)


def _end(recorder: MemoryRecorder) -> EpisodeEnd:
    ends = [item for item in recorder.items if isinstance(item, EpisodeEnd)]
    assert len(ends) == 1
    return ends[0]


async def test_a_result_whose_str_raises_is_a_tool_error(serve: Any) -> None:
    server = await serve([_call("odd"), _answer("could not read it")])
    async with Agent(model=SGLangChat(server.base_url), tools=[odd]) as agent:
        result = await agent.run("go")
    assert result.ok
    message = next(m for m in result.messages if isinstance(m, ToolMessage))
    assert message.is_error and "cannot be shown" in message.content
    assert "no text for you" in message.content
    step = next(s for s in result.trajectory.steps if s.step_type == "tool")
    assert step.status == "error" and step.error_type == "RuntimeError"


async def test_a_raising_event_handler_fails_the_run_not_the_caller(serve: Any) -> None:
    server = await serve([_call("fine", q="a"), _answer("done")])
    recorder = MemoryRecorder()

    async def handler(event: RunEvent) -> None:
        if isinstance(event, ToolResultEvent):
            raise ValueError("the UI broke")

    async with Agent(model=SGLangChat(server.base_url), tools=[fine]) as agent:
        result = await agent.run("go", event_handler=handler, recorder=recorder)
    assert result.status is EpisodeStatus.FAILED
    assert result.error == "ValueError: the UI broke"
    end = _end(recorder)
    assert end.status is EpisodeStatus.FAILED and end.error == "ValueError: the UI broke"
    assert end.failure is FailureAttribution.INFRASTRUCTURE


class FlakyRecorder:
    """Fails on its ``fail_at``-th record (a disk that fills up mid-run)."""

    def __init__(self, fail_at: int) -> None:
        self.fail_at = fail_at
        self.seen = 0

    async def record(self, item: Record) -> None:
        self.seen += 1
        if self.seen == self.fail_at:
            raise OSError(28, "No space left on device")


async def test_a_raising_recorder_fails_the_run_and_the_other_recorders_see_why(
    serve: Any,
) -> None:
    server = await serve([_call("fine", q="a"), _answer("done")])
    memory = MemoryRecorder()
    agent = Agent(
        model=SGLangChat(server.base_url), tools=[fine], recorder=FlakyRecorder(fail_at=2)
    )
    async with agent:
        result = await agent.run("go", recorder=memory)
    assert result.status is EpisodeStatus.FAILED
    assert "FlakyRecorder failed" in (result.error or "")
    assert "No space left on device" in (result.error or "")
    end = _end(memory)
    assert end.status is EpisodeStatus.FAILED and end.error == result.error


async def test_a_recorder_failing_on_the_end_record_is_reported(serve: Any) -> None:
    server = await serve([_answer("done")])
    # start, call record, end: the third record fails
    async with Agent(model=SGLangChat(server.base_url), recorder=FlakyRecorder(3)) as agent:
        result = await agent.run("go")
    assert result.status is EpisodeStatus.FAILED
    assert "No space left on device" in (result.error or "")


class Strict(BaseModel):
    value: int

    @field_validator("value")
    @classmethod
    def _crash(cls, value: int) -> int:
        raise TypeError("validator bug")  # not a ValueError: pydantic lets it through


async def test_a_crashing_output_validator_is_an_invalid_answer(serve: Any) -> None:
    server = await serve([_answer('{"value": 1}'), _answer('{"value": 2}')])
    agent: Agent[None, Strict] = Agent(
        model=SGLangChat(server.base_url), output_type=Strict, output_retries=1
    )
    async with agent:
        result = await agent.run("go")
    assert result.status is EpisodeStatus.OUTPUT_INVALID
    assert "TypeError: validator bug" in (result.error or "")


class CrashingTool(Tool):
    async def call(self, arguments: Any, ctx: RunContext[Any]) -> ToolOutcome:
        raise KeyError("subclass bug")


async def test_a_tool_whose_call_raises_is_a_tool_error(serve: Any) -> None:
    server = await serve([_call("crash"), _answer("ok")])
    crash = CrashingTool("crash", "Crashes.", {"type": "object", "properties": {}}, _unused)
    async with Agent(model=SGLangChat(server.base_url), tools=[crash]) as agent:
        result = await agent.run("go")
    assert result.ok
    step = next(s for s in result.trajectory.steps if s.step_type == "tool")
    assert step.status == ToolStatus.ERROR.value and "subclass bug" in (step.error or "")


async def _unused(arguments: dict[str, Any], ctx: RunContext[Any]) -> str:
    return ""


class BrokenSession:
    async def generate(self, request: ModelRequest, *, on_delta: Any = None) -> Any:
        raise AttributeError("backend bug")


class BrokenModel:
    """A backend with a bug (no real backend raises this; the loop must still not crash)."""

    name, mode = "broken", "chat"

    def __init__(self, *, session_fails: bool) -> None:
        self.session_fails = session_fails

    def session(self, *, routing_key: str | None = None) -> BrokenSession:
        if self.session_fails:
            raise RuntimeError("no session")
        return BrokenSession()

    async def aclose(self) -> None:
        return None


@pytest.mark.parametrize(
    ("session_fails", "message"),
    [(False, "AttributeError: backend bug"), (True, "RuntimeError: no session")],
)
async def test_a_backend_bug_fails_the_run(session_fails: bool, message: str) -> None:
    recorder = MemoryRecorder()
    agent = Agent(model=BrokenModel(session_fails=session_fails), recorder=recorder)
    result = await agent.run("go")
    assert result.status is EpisodeStatus.FAILED
    assert message in (result.error or "")
    assert _end(recorder).status is EpisodeStatus.FAILED
