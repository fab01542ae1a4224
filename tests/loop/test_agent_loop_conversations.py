"""Conversations of several user turns against the SGLang test server: one token context across
turns, and what the episode records (prompt, final messages, user steps once each)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from agentkit import Agent
from agentkit.dialects.glm45 import format_assistant
from agentkit.models import SGLangChat
from agentkit.models.sglang_tokens import SGLangTokens
from agentkit.trajectory.recorder import MemoryRecorder
from tests.loop.run_support import StartServer
from tests.loop.weather_agent import Report, exchanges, get_weather

pytestmark = pytest.mark.anyio


async def test_conversation_keeps_one_token_context_across_user_turns(
    server_factory: StartServer, tokenizer_path: Path
) -> None:
    script = [
        format_assistant("Greet.", "Hello! How can I help?", []),
        format_assistant("Weather.", "", [("get_weather", {"city": "Paris"})]),
        format_assistant("Answer.", "21C in Paris.", []),
    ]
    server = await server_factory(script)
    agent = Agent(model=SGLangTokens(server.base_url, tokenizer_path), tools=[get_weather])
    async with agent:
        conv = agent.conversation()
        first = await conv.send("hi")
        second = await conv.send("weather in Paris?")
        await conv.finish(reward=1.0)
    assert first.output == "Hello! How can I help?" and second.output == "21C in Paris."
    wire = exchanges(server, "/generate")
    for before, after in itertools.pairwise(wire):
        held = before["request"]["input_ids"] + before["response"]["output_ids"]
        assert after["request"]["input_ids"][: len(held)] == held
    assert conv.trajectory.end is not None and conv.trajectory.end.reward == 1.0


async def test_episode_records_prompt_and_final_messages(server_factory: StartServer) -> None:
    server = await server_factory([format_assistant("r", "hello", [])])
    recorder = MemoryRecorder()
    agent = Agent(model=SGLangChat(server.base_url), instructions="Be kind.", recorder=recorder)
    async with agent:
        await agent.run("hi", label="greeting")
    start, end = recorder.items[0], recorder.items[-1]
    assert getattr(start, "prompt_messages", None) == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "hi"},
    ]
    assert getattr(start, "label", None) == "greeting"
    messages = getattr(end, "messages", None) or []
    assert [m["role"] for m in messages] == ["system", "user", "assistant"]
    assert messages[-1]["content"] == "hello"


async def test_later_user_turns_and_output_retries_are_recorded_as_user_steps(
    server_factory: StartServer,
) -> None:
    script = [
        format_assistant("a", "first answer", []),
        format_assistant("b", "not json", []),
        format_assistant("c", '{"city": "Oslo", "fahrenheit": "50F"}', []),
    ]
    server = await server_factory(script)
    recorder = MemoryRecorder()
    agent: Agent[None, Any] = Agent(model=SGLangChat(server.base_url), recorder=recorder)
    async with agent:
        conv = agent.conversation()
        await conv.send("hello")
        agent.output_type = Report  # the second turn asks for structure
        await conv.send("now a report")
        await conv.finish()
    user_steps = [s.output for s in conv.trajectory.steps if s.step_type == "user"]
    assert user_steps[0] == "now a report"
    assert len(user_steps) == 2 and "did not validate" in user_steps[1]
    start = conv.trajectory.start
    assert [m["content"] for m in start.prompt_messages if m["role"] == "user"] == ["hello"]
    assert sum(1 for i in recorder.items if getattr(i, "step_type", "") == "user") == 2


async def test_a_user_step_recorded_by_the_caller_is_not_recorded_twice(
    server_factory: StartServer,
) -> None:
    server = await server_factory(lambda r: format_assistant("x", "ok", []))
    async with Agent(model=SGLangChat(server.base_url)) as agent:
        conv = agent.conversation()
        await conv.record_env_step("user", "first")  # as the tau runner does
        await conv.send("first")
        await conv.record_env_step("user", "second")
        await conv.send("second")
        await conv.send("third")
    users = [s.output for s in conv.trajectory.steps if s.step_type == "user"]
    assert users == ["first", "second", "third"]
