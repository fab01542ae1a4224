"""Under trio, where aiohttp cannot run, the model transport falls back to httpx."""

from __future__ import annotations

import pytest

from agentkit import Agent, tool
from agentkit.dialects.glm45 import format_assistant
from agentkit.events import ModelRetryEvent, RunEvent
from agentkit.models import SGLangChat
from agentkit.models.sglang_tokens import SGLangTokens
from agentkit.models.transport import RetryPolicy
from agentkit.testing import Fault, FaultKind, SGLangTestServer, build_test_tokenizer
from agentkit.trajectory.records import AttemptCause, EpisodeStatus

trio = pytest.importorskip("trio")
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "trio"


@tool
def double(x: int) -> int:
    """Double.

    Args:
        x: number
    """
    return 2 * x


@pytest.mark.parametrize("mode", ["chat", "tokens"])
@pytest.mark.parametrize("stream", [False, True])
async def test_agent_runs_under_trio(mode: str, stream: bool) -> None:
    script = [
        format_assistant("double it", "", [("double", {"x": 21})]),
        format_assistant("done", "42", []),
    ]
    with SGLangTestServer(policy=script) as server:
        model = (
            SGLangChat(server.base_url)
            if mode == "chat"
            else SGLangTokens(server.base_url, build_test_tokenizer())
        )
        async with Agent(model=model, tools=[double]) as agent:
            if stream:
                events = [e async for e in agent.stream("double 21")]
                result = events[-1].result
            else:
                result = await agent.run("double 21")
    assert result.ok, result.error
    assert result.output == "42"
    assert result.usage.tool_calls == 1


async def test_retries_work_under_trio() -> None:
    with SGLangTestServer(policy=[format_assistant("x", "hello", [])]) as server:
        server.fail_next(1, status=503)
        model = SGLangChat(
            server.base_url, retry=RetryPolicy(max_attempts=2, initial_backoff_s=0.01)
        )
        async with Agent(model=model) as agent:
            result = await agent.run("hi")
    assert result.ok
    assert [a.status_code for a in result.trajectory.calls[0].attempts] == [503, 200]


@pytest.mark.parametrize("always", [False, True], ids=["once", "always"])
@pytest.mark.parametrize(
    ("kind", "cause"),
    [
        (FaultKind.CONNECTION_RESET, AttemptCause.CONNECTION),
        (FaultKind.TRUNCATED_STREAM, AttemptCause.INCOMPLETE_STREAM),
        (FaultKind.RATE_LIMITED, AttemptCause.HTTP_STATUS),
        (FaultKind.HANG, AttemptCause.TIMEOUT),
    ],
    ids=lambda v: getattr(v, "value", None),
)
async def test_stream_faults_are_typed_under_trio(
    kind: FaultKind, cause: AttemptCause, always: bool
) -> None:
    retry = RetryPolicy(
        max_attempts=2, initial_backoff_s=0.01, max_retry_after_s=0.05, timeout_s=0.5
    )
    with SGLangTestServer(policy=[format_assistant("x", "hello", [])] * 3) as server:
        server.inject(Fault(kind, times=None if always else 1, retry_after_s=1, hang_s=5))
        events: list[RunEvent] = []

        async def collect(event: RunEvent) -> None:
            events.append(event)

        async with Agent(model=SGLangChat(server.base_url, retry=retry)) as agent:
            result = await agent.run("hi", event_handler=collect)
    first = result.trajectory.calls[0]
    assert first.attempts[0].cause is cause
    assert any(isinstance(e, ModelRetryEvent) for e in events)
    if always:
        assert result.status is EpisodeStatus.MODEL_ERROR and first.failed
    else:
        assert result.ok, result.error
        assert result.output == "hello" and first.attempts[-1].ok
