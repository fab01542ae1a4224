"""Leaving ``agent.stream()`` early, in every way a caller can, raises nothing into the caller and
closes the episode as ``cancelled`` in the store (read back from the JSONL file). Under asyncio
and trio."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from agentkit import Agent, EpisodeStatus, tool
from agentkit.dialects.glm45 import format_assistant
from agentkit.events import FinalEvent, ToolCallEvent
from agentkit.models import SGLangChat
from agentkit.testing import SGLangTestServer
from agentkit.trajectory.records import EpisodeEnd
from agentkit.trajectory.store import JsonlStore, read_store

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@tool(timeout=None)
async def slow(q: str) -> str:
    """Takes a long time.

    Args:
        q: query
    """
    await anyio.sleep(60)
    return q


SCRIPT = [
    format_assistant("Look it up.", "", [("slow", {"q": "a"})]),
    format_assistant("Done.", "never reached", []),
]


@pytest.fixture
async def server() -> AsyncIterator[SGLangTestServer]:
    async with SGLangTestServer(policy=SCRIPT) as running:
        yield running


def _ends(path: Path) -> list[EpisodeEnd]:
    if not path.exists():
        return []
    return [t.end for t in read_store(path).episodes if t.end is not None]


def _cancelled_once(path: Path) -> None:
    contents = read_store(path)
    assert len(contents.episodes) == 1
    episode = contents.episodes[0]
    assert episode.end is not None, "the episode was left unfinished"
    assert episode.end.status is EpisodeStatus.CANCELLED
    assert [s.status for s in episode.steps if s.step_type == "tool"] == ["cancelled"]


def _agent(server: SGLangTestServer, path: Path) -> tuple[Agent[Any, Any], JsonlStore]:
    store = JsonlStore(path)
    return Agent(model=SGLangChat(server.base_url), tools=[slow], recorder=store), store


async def test_break_closes_the_episode(server: SGLangTestServer, tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    agent, store = _agent(server, path)
    async with agent:
        async for event in agent.stream("go"):
            if isinstance(event, ToolCallEvent):
                break
        # the dropped iterator cancels the run; its end record follows without aclose()
        with anyio.fail_after(30):
            while not _ends(path):  # noqa: ASYNC110 - the store file is all there is to watch
                await anyio.sleep(0.02)
    store.close()
    _cancelled_once(path)


async def test_aclose_waits_for_the_closed_record(server: SGLangTestServer, tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    agent, store = _agent(server, path)
    async with agent:
        events = agent.stream("go")
        async for event in events:
            if isinstance(event, ToolCallEvent):
                await events.aclose()
                _cancelled_once(path)  # closed before aclose() returned
        with pytest.raises(StopAsyncIteration):
            await events.__anext__()
    store.close()


async def test_an_outer_cancel_scope(server: SGLangTestServer, tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    agent, store = _agent(server, path)
    async with agent:
        with anyio.CancelScope() as scope:
            async for event in agent.stream("go"):
                if isinstance(event, ToolCallEvent):
                    scope.cancel()
        assert scope.cancelled_caught
        _cancelled_once(path)
    store.close()


async def test_move_on_after(server: SGLangTestServer, tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    agent, store = _agent(server, path)
    seen: list[str] = []
    async with agent:
        with anyio.move_on_after(1.0) as scope:  # the tool sleeps for a minute
            async for event in agent.stream("go"):
                seen.append(event.type)
        assert scope.cancelled_caught
        _cancelled_once(path)
    store.close()
    assert "tool_call" in seen and "final" not in seen


async def test_cancelling_the_consumer_task(server: SGLangTestServer, tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    agent, store = _agent(server, path)
    calling = anyio.Event()

    async def consume() -> None:
        async for event in agent.stream("go"):
            if isinstance(event, ToolCallEvent):
                calling.set()

    async with agent:
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await calling.wait()
            tg.cancel_scope.cancel()
        _cancelled_once(path)
    store.close()


async def test_reading_to_the_end_still_works(tmp_path: Path) -> None:
    script = [format_assistant("Sum up.", "All done.", [])]
    path = tmp_path / "s.jsonl"
    async with SGLangTestServer(policy=script) as server:
        store = JsonlStore(path)
        async with Agent(model=SGLangChat(server.base_url), recorder=store) as agent:
            events = [event async for event in agent.stream("hi")]
        store.close()
    assert isinstance(events[-1], FinalEvent)
    assert events[-1].result.ok and events[-1].result.text == "All done."
    ends = _ends(path)
    assert [e.status for e in ends] == [EpisodeStatus.COMPLETED]
