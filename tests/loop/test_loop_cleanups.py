"""Loop clean-ups that came with the runtime work (issue 13): a backend's failure without a
record still gets one from the shared builder, and stream bookkeeping lives on ``Agent``."""

from __future__ import annotations

import time
from typing import Any

import pytest

from agentkit import Agent, EpisodeStatus
from agentkit.agent_base import AgentBase
from agentkit.models.base import ModelError, ModelRequest, ModelResponse
from agentkit.trajectory.recorder import MemoryRecorder
from agentkit.trajectory.records import Attempt, AttemptCause, ModelCallRecord

pytestmark = pytest.mark.anyio


class RecordlessBackend:
    """A third-party backend whose calls fail with a ``ModelError`` and build no record."""

    name = "recordless"
    mode = "chat"

    def session(self, *, routing_key: str | None = None) -> RecordlessBackend:
        return self

    async def generate(self, request: ModelRequest, *, on_delta: Any = None) -> ModelResponse:
        attempt = Attempt(
            number=1,
            server="http://127.0.0.1:9",
            started_at=time.time(),
            elapsed_s=0.01,
            ok=False,
            status_code=503,
            error="http_status: 503",
            cause=AttemptCause.HTTP_STATUS,
            retryable=True,
        )
        raise ModelError("the backend gave up", [attempt], cause=AttemptCause.HTTP_STATUS)

    async def aclose(self) -> None:
        return None


async def test_a_failure_without_a_record_is_recorded_by_the_shared_builder() -> None:
    recorder = MemoryRecorder()
    agent: Agent[None, None] = Agent(model=RecordlessBackend(), recorder=recorder)
    async with agent:
        result = await agent.run("hello")
    assert result.status is EpisodeStatus.MODEL_ERROR
    calls = [r for r in recorder.items if isinstance(r, ModelCallRecord)]
    assert len(calls) == 1
    record = calls[0]
    assert record.failed and record.error == "the backend gave up"
    assert record.error_cause is AttemptCause.HTTP_STATUS
    assert record.server == "http://127.0.0.1:9"  # from the last attempt, as the builder does
    assert [a.status_code for a in record.attempts] == [503]
    assert (record.episode_id, record.index, record.turn, record.mode) == (
        result.trajectory.episode_id,
        0,
        0,
        "chat",
    )
    assert record.started_at > 0


def test_stream_bookkeeping_is_the_agents_not_the_configurations() -> None:
    base: AgentBase[None, None] = AgentBase(model=RecordlessBackend())
    assert not hasattr(base, "_streams") and not hasattr(base, "_stream_tasks")
    agent: Agent[None, None] = Agent(model=RecordlessBackend())
    assert agent._streams == set() and agent._stream_tasks == set()
    assert agent._streams is agent._streams  # one set per agent, kept
    assert Agent(model=RecordlessBackend())._streams is not agent._streams
