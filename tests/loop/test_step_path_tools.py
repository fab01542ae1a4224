"""A turn's one call goes straight to its tool when nothing stands in between (no hooks, no
decisions, no event listener): the messages, records and usage must be those of the general
path (:class:`~agentkit.tool_turn.TurnCalls` with the gate), for every kind of outcome and for a
cancelled call; and the worker pool's timed calls leave no live timer behind."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import anyio
import pytest

from agentkit import Agent, EpisodeStatus, RunContext, tool
from agentkit.dialects.glm45 import format_assistant
from agentkit.messages import ToolCall, to_openai
from agentkit.models import SGLangChat
from agentkit.tool import ToolOutcome
from agentkit.tool_turn import TurnCalls
from agentkit.worker_threads import COMPACT_AT, MAX_LIMITS, _Deadlines, pool_of, start_call
from tests.loop.run_support import StartServer, without_call_ids

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


@tool(inline=True)
def quick(key: str, ctx: RunContext[Any]) -> str:
    """Answers on the loop, with the run's deps.

    Args:
        key: the key
    """
    return f"{ctx.deps}:{key}:{ctx.turn}"


@tool
async def later(key: str) -> str:
    """An async tool.

    Args:
        key: the key
    """
    return f"later {key}"


def _call(name: str, **arguments: Any) -> str:
    return format_assistant("Call.", "", [(name, arguments)])


SCRIPT = [
    _call("lookup", key="a"),
    _call("broken", key="b"),
    _call("lookup"),  # invalid arguments
    _call("nowhere", key="c"),  # unknown tool
    _call("quick", key="d"),
    _call("later", key="e"),
    format_assistant("Done.", "the answer", []),
]
TIMING = {"started_at", "latency_s", "elapsed_s", "episode_id"}


def _after(call: ToolCall, outcome: ToolOutcome, ctx: RunContext[Any]) -> None:
    return None  # changes nothing, but puts the turn on the general path


async def _run(start: StartServer, *, hooked: bool) -> tuple[Any, int]:
    server = await start(list(SCRIPT))
    made = []
    original = TurnCalls.__init__

    def counting(self: TurnCalls, *args: Any, **kwargs: Any) -> None:
        made.append(self)
        original(self, *args, **kwargs)

    agent: Agent[str, str] = Agent(
        model=SGLangChat(server.base_url),
        tools=[lookup, broken, quick, later],
        after_tool_call=_after if hooked else None,
    )
    TurnCalls.__init__ = counting  # type: ignore[method-assign]
    try:
        async with agent:
            result = await agent.run("go", deps="D")
    finally:
        TurnCalls.__init__ = original  # type: ignore[method-assign]
    return result, len(made)


async def test_the_direct_path_gives_what_the_general_path_gives(
    server_factory: StartServer,
) -> None:
    direct, direct_turns = await _run(server_factory, hooked=False)
    general, general_turns = await _run(server_factory, hooked=True)
    assert direct_turns == 1  # only the unknown tool's turn takes the general path
    assert general_turns == 6
    assert direct.status is general.status is EpisodeStatus.COMPLETED
    assert direct.output == general.output == "the answer"
    assert without_call_ids(to_openai(direct.messages)) == without_call_ids(
        to_openai(general.messages)
    )
    steps = [without_call_ids([s.model_dump(exclude=TIMING)]) for s in direct.trajectory.steps]
    again = [without_call_ids([s.model_dump(exclude=TIMING)]) for s in general.trajectory.steps]
    assert steps == again
    assert [s.status for s in direct.trajectory.steps] == [
        "ok",
        "error",
        "invalid_arguments",
        "unknown_tool",
        "ok",
        "ok",
    ]
    assert direct.trajectory.steps[4].output == "D:d:4"  # the context reached the tool
    for fast, slow in zip(direct.trajectory.steps, general.trajectory.steps, strict=True):
        assert fast.model_fields_set == slow.model_fields_set
        assert fast.started_at > 0 and fast.latency_s >= 0
    assert direct.usage.tool_calls == general.usage.tool_calls == 6


async def test_a_cancelled_direct_call_is_recorded_as_the_general_path_records_it(
    server_factory: StartServer,
) -> None:
    entered = anyio.Event()

    @tool
    async def hang(key: str) -> str:
        """Never returns.

        Args:
            key: the key
        """
        entered.set()
        await anyio.sleep_forever()
        return key

    async def run(hooked: bool) -> Any:
        server = await server_factory([_call("hang", key="x")])
        agent: Agent[None, str] = Agent(
            model=SGLangChat(server.base_url),
            tools=[hang],
            after_tool_call=_after if hooked else None,
        )
        conv = agent.conversation()
        async with agent, anyio.create_task_group() as tg:
            tg.start_soon(conv.send, "go")
            await entered.wait()
            tg.cancel_scope.cancel()
        return conv

    direct = await run(False)
    entered = anyio.Event()
    general = await run(True)
    for conv in (direct, general):
        assert conv.trajectory.end is not None
        assert conv.trajectory.end.status is EpisodeStatus.CANCELLED
    (fast,), (slow,) = direct.trajectory.steps, general.trajectory.steps
    assert fast.status == slow.status == "cancelled"
    untimed = TIMING | {"call"}  # the server's call ids are random
    assert fast.model_dump(exclude=untimed) == slow.model_dump(exclude=untimed)
    assert fast.call is not None and slow.call is not None
    assert fast.call.model_dump(exclude={"id"}) == slow.call.model_dump(exclude={"id"})
    assert to_openai(direct.messages)[-1]["content"] == to_openai(general.messages)[-1]["content"]


def _negate(x: int) -> int:
    return -x


def _queued(time_limit: float) -> int:
    """Calls of ``time_limit`` still in the pool's deadline queue."""
    deadlines = pool_of(asyncio.get_running_loop()).deadlines.get(time_limit)
    return 0 if deadlines is None else len(deadlines.queue)


async def test_an_answered_call_leaves_the_deadline_queue() -> None:
    assert await start_call(lambda key: f"v {key}", {"key": "k"}, 30.0) == "v k"
    assert _queued(30.0) == 0


async def test_an_abandoned_call_leaves_the_deadline_queue_and_is_not_run() -> None:
    release = threading.Event()
    blocking = start_call(release.wait, {"timeout": 5.0}, None)
    await asyncio.sleep(0.05)  # the worker is inside it now
    ran: list[int] = []
    waiting = asyncio.ensure_future(start_call(ran.append, {"object": 1}, 31.0))
    await asyncio.sleep(0)
    assert _queued(31.0) == 1
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    release.set()
    assert await blocking is True
    assert _queued(31.0) == 0  # dropped when the pool handed out the next result
    assert ran == []  # abandoned before it started: never run


async def test_calls_of_one_limit_time_out_in_turn_each_at_its_own_deadline() -> None:
    release = threading.Event()
    first = asyncio.ensure_future(start_call(release.wait, {"timeout": 5.0}, 0.2))
    await asyncio.sleep(0.1)
    second = asyncio.ensure_future(start_call(release.wait, {"timeout": 5.0}, 0.2))
    with pytest.raises(TimeoutError):
        await first
    assert not second.done()  # its deadline is later: the one timer was set again for it
    with pytest.raises(TimeoutError):
        await second
    release.set()
    assert _queued(0.2) == 0


async def test_answered_calls_behind_a_slow_one_are_dropped_from_the_queue() -> None:
    release = threading.Event()
    loop = asyncio.get_running_loop()
    workers = pool_of(loop)
    slow = asyncio.ensure_future(start_call(release.wait, {"timeout": 5.0}, 32.0))
    await asyncio.sleep(0.05)  # the first worker is inside it; the others get a second one
    workers._start_worker()
    results = [await start_call(_negate, {"x": -i}, 32.0) for i in range(COMPACT_AT * 3)]
    assert results == list(range(COMPACT_AT * 3))
    assert _queued(32.0) <= COMPACT_AT  # not every answered call behind the slow one
    release.set()
    assert await slow is True
    assert _queued(32.0) == 0


async def test_no_time_left_fails_before_the_call_is_queued() -> None:
    ran: list[int] = []
    pool = pool_of(asyncio.get_running_loop())
    queued = pool.jobs.qsize()
    pending = start_call(ran.append, {"object": 1}, 0.0)
    assert pool.jobs.qsize() == queued
    with pytest.raises(TimeoutError):
        await pending
    assert ran == []


async def test_a_call_past_its_limit_times_out_and_its_result_is_dropped() -> None:
    release = threading.Event()
    with pytest.raises(TimeoutError):
        await start_call(release.wait, {"timeout": 5.0}, 0.05)
    release.set()
    assert _queued(0.05) == 0


async def test_beyond_the_kept_limits_a_call_gets_a_timer_of_its_own() -> None:
    pool = pool_of(asyncio.get_running_loop())
    for i in range(MAX_LIMITS):  # fill the table of limits
        pool.deadlines.setdefault(1000.0 + i, _Deadlines(asyncio.get_running_loop(), 1000.0 + i))
    release = threading.Event()
    with pytest.raises(TimeoutError):
        await start_call(release.wait, {"timeout": 5.0}, 0.07)
    assert 0.07 not in pool.deadlines
    release.set()
    assert await start_call(_negate, {"x": -3}, 0.09) == 3
