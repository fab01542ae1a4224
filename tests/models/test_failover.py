"""Several servers behind one client: sticky routing per episode and failover when one dies."""

from __future__ import annotations

import itertools
from typing import Any

import anyio
import anyio.to_thread
import pytest

from agentkit import Agent, tool
from agentkit.dialects.glm45 import format_assistant
from agentkit.models import SGLangChat
from agentkit.models.sglang_tokens import SGLangTokens
from agentkit.models.transport import RetryPolicy
from agentkit.models.urls import ServerPool
from agentkit.testing import PolicyRequest, SGLangTestServer, build_test_tokenizer

pytestmark = pytest.mark.anyio

TURNS = 4


@tool
def step(n: int) -> str:
    """One step.

    Args:
        n: Step number.
    """
    return f"did {n}"


def policy(request: PolicyRequest) -> str:
    done = request.assistant_turns
    if done < TURNS:
        return format_assistant(f"step {done}", "", [("step", {"n": done})])
    return format_assistant("finish", f"finished {request.first_user_message}", [])


def test_routing_is_sticky_and_spreads_keys() -> None:
    pool = ServerPool(["http://a", "http://b", "http://c"])
    picks = {key: pool.pick(key) for key in (f"ep{i}" for i in range(60))}
    assert all(pool.pick(key) == server for key, server in picks.items())
    assert set(picks.values()) == {"http://a", "http://b", "http://c"}
    pool.mark_down("http://a")
    moved = {key: pool.pick(key) for key, server in picks.items() if server == "http://a"}
    assert moved and "http://a" not in moved.values()


@pytest.mark.parametrize("mode", ["chat", "tokens"])
async def test_killing_a_server_mid_rollout_fails_over_and_every_episode_completes(
    mode: str,
) -> None:
    tokenizer = build_test_tokenizer()
    a = SGLangTestServer(policy=policy, latency_s=0.05)
    b = SGLangTestServer(policy=policy, latency_s=0.05)
    await a.__aenter__()
    await b.__aenter__()
    retry = RetryPolicy(max_attempts=2, initial_backoff_s=0.01, timeout_s=10)
    urls = [a.base_url, b.base_url]
    model: Any = (
        SGLangChat(urls, retry=retry)
        if mode == "chat"
        else SGLangTokens(urls, tokenizer, retry=retry)
    )
    agent = Agent(model=model, tools=[step], max_turns=TURNS + 2)
    results: dict[int, Any] = {}
    a_url, b_url = a.base_url, b.base_url

    async def episode(i: int) -> None:
        results[i] = await agent.run(f"task {i}")

    try:
        # bounded: a rollout that stops making progress fails here instead of hanging the suite
        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:
                for i in range(12):
                    tg.start_soon(episode, i)
                # let some episodes make calls on A, then kill it mid-rollout (routing keys are
                # random, so A may get only one or two of the 12 episodes: 2 requests suffice)
                while len(a.requests) < 2:  # noqa: ASYNC110 - polling another thread's state
                    await anyio.sleep(0.01)
                await anyio.to_thread.run_sync(a.stop)
    finally:
        await agent.aclose()
        await b.__aexit__(None, None, None)

    assert len(results) == 12
    switched = 0
    saw_failure = 0
    for i, result in results.items():
        assert result.ok, (i, result.error)
        assert result.output == f"finished task {i}"
        servers = [call.server for call in result.trajectory.calls]
        # one server until the failover, then the other one for good
        changes = sum(1 for x, y in itertools.pairwise(servers) if x != y)
        assert changes <= 1
        if changes:
            switched += 1
            assert servers[0] == a_url and servers[-1] == b_url
            failed = [
                att for call in result.trajectory.calls for att in call.attempts if not att.ok
            ]
            # an episode either saw A fail itself, or moved because A was already marked down
            assert all(att.server.startswith(a_url) for att in failed)
            saw_failure += bool(failed)
    assert switched >= 1 and saw_failure >= 1
    assert model.servers.failovers >= saw_failure
