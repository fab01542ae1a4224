"""Structured output against the SGLang test server: an invalid answer is sent back, retries are
bounded, and the final_result tool ends the run."""

from __future__ import annotations

import pytest

from agentkit import Agent, EpisodeStatus
from agentkit.dialects.glm45 import format_assistant
from agentkit.models import SGLangChat
from tests.loop.run_support import StartServer
from tests.loop.weather_agent import Report

pytestmark = pytest.mark.anyio


async def test_invalid_structured_output_is_sent_back_then_accepted(
    server_factory: StartServer,
) -> None:
    script = [
        format_assistant("Answer.", "Paris is warm.", []),
        format_assistant("Fix it.", '{"city": "Paris"}', []),
        format_assistant("Fix again.", '```json\n{"city": "Paris", "fahrenheit": "70F"}\n```', []),
    ]
    server = await server_factory(script)
    agent: Agent[None, Report] = Agent(model=SGLangChat(server.base_url), output_type=Report)
    async with agent:
        result = await agent.run("report")
    assert result.ok and result.output == Report(city="Paris", fahrenheit="70F")
    retries = [m for m in result.messages if m.role == "user"][1:]
    assert len(retries) == 2 and "did not validate" in retries[0].content


async def test_structured_output_gives_up_after_bounded_retries(
    server_factory: StartServer,
) -> None:
    server = await server_factory(lambda r: format_assistant("x", "not json", []))
    agent: Agent[None, Report] = Agent(
        model=SGLangChat(server.base_url), output_type=Report, output_retries=1
    )
    async with agent:
        result = await agent.run("report")
    assert result.status is EpisodeStatus.OUTPUT_INVALID
    assert result.usage.requests == 2


async def test_final_result_tool_ends_the_run(server_factory: StartServer) -> None:
    script = [
        format_assistant(
            "Use the tool.", "", [("final_result", {"city": "Oslo", "fahrenheit": "54F"})]
        )
    ]
    server = await server_factory(script)
    agent: Agent[None, Report] = Agent(model=SGLangChat(server.base_url), output_type=Report)
    async with agent:
        result = await agent.run("report")
    assert result.ok and result.output == Report(city="Oslo", fahrenheit="54F")
