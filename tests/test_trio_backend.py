"""Under trio, where aiohttp cannot run, the model transport falls back to httpx."""

from __future__ import annotations

import pytest

from agentkit import Agent, tool
from agentkit.dialects.glm45 import format_assistant
from agentkit.models import SGLangChat
from agentkit.models.sglang_tokens import SGLangTokens
from agentkit.models.transport import RetryPolicy
from agentkit.testing import SGLangTestServer, build_test_tokenizer

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
