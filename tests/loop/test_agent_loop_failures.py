"""What goes wrong in a run, against the SGLang test server: failing tools become observations,
max_turns ends with a partial result, model errors are retried then reported, and a cancelled run
leaves a consistent record."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from agentkit import Agent, EpisodeStatus, ToolError, tool
from agentkit.dialects.glm45 import format_assistant
from agentkit.messages import ToolMessage
from agentkit.models import SGLangChat
from agentkit.models.transport import RetryPolicy
from agentkit.trajectory.recorder import MemoryRecorder
from tests.loop.run_support import StartServer, make_model
from tests.loop.weather_agent import get_weather

pytestmark = pytest.mark.anyio


@tool
def explode(reason: str) -> str:
    """Always fails.

    Args:
        reason: Why.
    """
    raise RuntimeError(f"boom: {reason}")


@tool
def refuse() -> str:
    """Fails cleanly."""
    raise ToolError("the account is locked")


@tool(timeout=0.2)
async def hang() -> str:
    """Never returns in time."""
    await anyio.sleep(30)
    return "late"


@pytest.mark.parametrize("mode", ["chat", "tokens"])
async def test_tool_failures_become_observations_and_the_model_recovers(
    mode: str, server_factory: StartServer, tokenizer_path: Path
) -> None:
    script = [
        format_assistant(
            "Try everything.",
            "",
            [
                ("no_such_tool", {"x": 1}),
                ("get_weather", {"city": 42, "days": "many"}),
                ("explode", {"reason": "test"}),
                ("refuse", {}),
                ("hang", {}),
            ],
        ),
        format_assistant("Recovered.", "All tools failed, sorry.", []),
    ]
    server = await server_factory(script)
    tools = [get_weather, explode, refuse, hang]
    agent = Agent(model=make_model(mode, server.base_url, tokenizer_path), tools=tools)
    async with agent:
        result = await agent.run("go")
    assert result.ok, result.error
    assert result.output == "All tools failed, sorry."
    steps = result.trajectory.steps
    statuses = [s.status for s in steps]
    first_calls = result.trajectory.calls[0].tool_calls
    if mode == "tokens" or first_calls[0].name == "no_such_tool":
        # token mode keeps a call to an unknown tool; SGLang's chat parser drops it
        assert statuses[0] == "unknown_tool"
        assert "unknown tool 'no_such_tool'" in (steps[0].error or "")
        steps = steps[1:]
        statuses = statuses[1:]
    assert statuses == ["invalid_arguments", "error", "error", "timeout"]
    assert "boom: test" in (steps[1].error or "")
    assert steps[2].error == "the account is locked"
    observations = [m.content for m in result.messages if isinstance(m, ToolMessage)]
    assert all(text.startswith("Error:") for text in observations)


async def test_max_turns_returns_partial_result(server_factory: StartServer) -> None:
    loop_call = format_assistant("Again.", "", [("get_weather", {"city": "Paris"})])
    server = await server_factory(lambda request: loop_call)
    agent = Agent(model=SGLangChat(server.base_url), tools=[get_weather], max_turns=3)
    async with agent:
        result = await agent.run("forever")
    assert result.status is EpisodeStatus.MAX_TURNS
    assert result.output is None and "max_turns=3" in (result.error or "")
    assert result.usage.requests == 3 and len(result.trajectory.steps) == 3
    assert result.trajectory.end is not None
    assert result.trajectory.end.status is EpisodeStatus.MAX_TURNS


async def test_retries_are_visible_and_recover(server_factory: StartServer) -> None:
    server = await server_factory([format_assistant("hi", "hello", [])])
    server.fail_next(2, status=503)
    model = SGLangChat(server.base_url, retry=RetryPolicy(max_attempts=3, initial_backoff_s=0.01))
    async with Agent(model=model) as agent:
        result = await agent.run("hi")
    assert result.ok
    attempts = result.trajectory.calls[0].attempts
    assert [a.ok for a in attempts] == [False, False, True]
    assert [a.status_code for a in attempts[:2]] == [503, 503]


async def test_model_failure_after_last_retry_is_a_clear_status(
    server_factory: StartServer,
) -> None:
    server = await server_factory([format_assistant("hi", "hello", [])])
    server.fail_next(5, status=500)
    model = SGLangChat(server.base_url, retry=RetryPolicy(max_attempts=2, initial_backoff_s=0.01))
    async with Agent(model=model) as agent:
        result = await agent.run("hi")
    assert result.status is EpisodeStatus.MODEL_ERROR
    assert "after 2 attempt(s)" in (result.error or "") and "500" in (result.error or "")
    assert result.trajectory.end is not None
    assert result.trajectory.end.failure is not None
    assert result.trajectory.end.failure.value == "infrastructure"


async def test_connection_refused_is_retried_then_reported() -> None:
    model = SGLangChat(
        "http://127.0.0.1:9", retry=RetryPolicy(max_attempts=2, initial_backoff_s=0.01)
    )
    async with Agent(model=model) as agent:
        result = await agent.run("hi")
    assert result.status is EpisodeStatus.MODEL_ERROR
    assert "after 2 attempt(s)" in (result.error or "")


async def test_cancelling_a_run_leaves_a_consistent_record(server_factory: StartServer) -> None:
    started = anyio.Event()

    @tool
    async def slow_lookup(q: str) -> str:
        """Slow.

        Args:
            q: query
        """
        started.set()
        await anyio.sleep(30)
        return q

    script = [
        format_assistant(
            "Look.", "", [("slow_lookup", {"q": "a"}), ("get_weather", {"city": "Paris"})]
        )
    ]
    server = await server_factory(script)
    recorder = MemoryRecorder()
    agent = Agent(
        model=SGLangChat(server.base_url), tools=[slow_lookup, get_weather], recorder=recorder
    )
    async with agent, anyio.create_task_group() as tg:
        tg.start_soon(agent.run, "go")
        await started.wait()
        await anyio.sleep(0.05)
        tg.cancel_scope.cancel()
    kinds = [type(i).__name__ for i in recorder.items]
    assert kinds[-1] == "EpisodeEnd"
    end = recorder.items[-1]
    assert getattr(end, "status", None) is EpisodeStatus.CANCELLED
    steps = [i for i in recorder.items if type(i).__name__ == "EnvStepRecord"]
    assert sorted(getattr(s, "status", "") for s in steps) == ["cancelled", "ok"]
