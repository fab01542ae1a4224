"""End-to-end runs of the planner loop against the SGLang test server, chat and token mode: tool
turns, the wire, streaming, deps, per-run thinking, per-turn call limits, speculative decoding."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from agentkit import Agent, EpisodeStatus, RunContext, tool
from agentkit.dialects.glm45 import format_assistant
from agentkit.events import FinalEvent, ReasoningDelta, TextDelta, ToolCallEvent, ToolResultEvent
from agentkit.messages import AssistantMessage, ToolMessage
from agentkit.models import SGLangChat
from agentkit.models.sglang_tokens import SGLangTokens
from agentkit.testing import PolicyRequest
from agentkit.trajectory.recorder import MemoryRecorder
from tests.loop.run_support import StartServer, make_model
from tests.loop.weather_agent import Report, convert, exchanges, get_weather, weather_script

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("mode", ["chat", "tokens"])
@pytest.mark.parametrize("thinking", [True, False])
async def test_two_tool_turns_with_parallel_calls_and_structured_output(
    mode: str, thinking: bool, server_factory: StartServer, tokenizer_path: Path
) -> None:
    server = await server_factory(weather_script(thinking))
    recorder = MemoryRecorder()
    agent: Agent[None, Report] = Agent(
        model=make_model(mode, server.base_url, tokenizer_path),
        instructions="You report weather.",
        tools=[get_weather, convert],
        thinking=thinking,
        output_type=Report,
        recorder=recorder,
    )
    async with agent:
        result = await agent.run("Weather in Paris and Oslo, in F for Paris?")

    assert result.status is EpisodeStatus.COMPLETED, result.error
    assert result.output == Report(city="Paris", fahrenheit="69.8F")
    tool_messages = [m for m in result.messages if isinstance(m, ToolMessage)]
    assert [json.loads(m.content)["city"] for m in tool_messages[:2]] == ["Paris", "Oslo"]
    assert json.loads(tool_messages[0].content)["days"] == 2
    assert tool_messages[2].content == "69.8F"
    assistants = [m for m in result.messages if isinstance(m, AssistantMessage)]
    assert [len(m.tool_calls) for m in assistants] == [2, 1, 0]
    if thinking:
        assert assistants[0].reasoning_content == "I need both forecasts."
    else:
        assert not assistants[0].reasoning_content
    assert result.usage.requests == 3 and result.usage.tool_calls == 3
    kinds = [type(item).__name__ for item in recorder.items]
    assert kinds[0] == "EpisodeStart" and kinds[-1] == "EpisodeEnd"
    assert kinds.count("ModelCallRecord") == 3 and kinds.count("EnvStepRecord") == 3

    bodies = [r.request for r in server.generation_requests()]
    assert len(bodies) == 3
    if mode == "chat":
        # thinking switch and the assistant turn sent back exactly as the server returned it
        assert all(b["chat_template_kwargs"] == {"enable_thinking": thinking} for b in bodies)
        first_reply = exchanges(server, "/v1/chat/completions")[0]["response"]["choices"][0][
            "message"
        ]
        sent_back = bodies[1]["messages"][2]
        assert sent_back["tool_calls"] == [
            {k: c[k] for k in ("id", "type", "function")} for c in first_reply["tool_calls"]
        ]
        assert sent_back.get("reasoning_content") == first_reply["reasoning_content"]
    else:
        for body in bodies:
            sp = body["sampling_params"]
            assert sp["skip_special_tokens"] is False and sp["no_stop_trim"] is True
            assert sorted(sp["stop_token_ids"]) == [151329, 151336, 151338]
            assert sp["max_new_tokens"] > 128
            assert body["return_logprob"] is True


async def test_token_mode_context_is_append_only(
    server_factory: StartServer, tokenizer_path: Path
) -> None:
    server = await server_factory(weather_script(True))
    agent = Agent(
        model=SGLangTokens(server.base_url, tokenizer_path),
        tools=[get_weather, convert],
        output_type=Report,
    )
    async with agent:
        result = await agent.run("Weather?")
    assert result.ok
    wire = exchanges(server, "/generate")
    assert len(wire) == 3
    for before, after in itertools.pairwise(wire):
        held = before["request"]["input_ids"] + before["response"]["output_ids"]
        assert after["request"]["input_ids"][: len(held)] == held
    # the record holds exactly what went over the wire
    for record, exchange in zip(result.trajectory.calls, wire, strict=True):
        assert record.input_ids == exchange["request"]["input_ids"]
        assert record.output_ids == exchange["response"]["output_ids"]
        logprobs = [lp for lp, _, _ in exchange["response"]["meta_info"]["output_token_logprobs"]]
        assert record.output_logprobs == logprobs
    # second call's cached tokens reflect the prefix cache hit
    assert (result.trajectory.calls[1].cached_tokens or 0) >= len(wire[0]["request"]["input_ids"])


@pytest.mark.parametrize("mode", ["chat", "tokens"])
async def test_stream_yields_typed_events_in_order(
    mode: str, server_factory: StartServer, tokenizer_path: Path
) -> None:
    server = await server_factory(
        [*weather_script(True)[:1], format_assistant("Sum up.", "Sunny in Paris.", [])]
    )
    agent = Agent(model=make_model(mode, server.base_url, tokenizer_path), tools=[get_weather])
    events = []
    async with agent:
        async for event in agent.stream("weather"):
            events.append(event)
    assert isinstance(events[-1], FinalEvent)
    result = events[-1].result
    assert result.ok and result.output == "Sunny in Paris."
    reasoning = "".join(e.text for e in events if isinstance(e, ReasoningDelta) and e.turn == 1)
    text = "".join(e.text for e in events if isinstance(e, TextDelta) and e.turn == 1)
    assert reasoning.strip() == "Sum up." and text.strip() == "Sunny in Paris."
    names = [e.call.name for e in events if isinstance(e, ToolCallEvent)]
    assert names == ["get_weather", "get_weather"]
    first_result = next(i for i, e in enumerate(events) if isinstance(e, ToolResultEvent))
    first_call = next(i for i, e in enumerate(events) if isinstance(e, ToolCallEvent))
    assert first_call < first_result


async def test_deps_reach_tools_through_run_context(server_factory: StartServer) -> None:
    seen: list[Any] = []

    @tool
    def whoami(ctx: RunContext[dict[str, str]]) -> str:
        """Who is the customer."""
        seen.append(ctx.deps)
        return ctx.deps["user"]

    assert "ctx" not in json.dumps(whoami.schema())
    script = [format_assistant("Look.", "", [("whoami", {})]), format_assistant("ok", "done", [])]
    server = await server_factory(script)
    agent: Agent[dict[str, str], str] = Agent(model=SGLangChat(server.base_url), tools=[whoami])
    async with agent:
        result = await agent.run("who?", deps={"user": "ada"})
    assert seen == [{"user": "ada"}]
    assert [m.content for m in result.messages if isinstance(m, ToolMessage)] == ["ada"]


async def test_thinking_can_be_switched_per_run(server_factory: StartServer) -> None:
    seen: list[bool] = []

    def policy(request: PolicyRequest) -> str:
        seen.append(request.enable_thinking)
        return format_assistant(
            "r" if request.enable_thinking else None, "ok", [], thinking=request.enable_thinking
        )

    server = await server_factory(policy)
    async with Agent(model=SGLangChat(server.base_url), thinking=True) as agent:
        await agent.run("a")
        await agent.run("b", thinking=False)
    assert seen == [True, False]


async def test_max_tool_calls_per_turn_keeps_only_the_first_calls(
    server_factory: StartServer,
) -> None:
    script = [
        format_assistant(
            "Two.", "", [("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Oslo"})]
        ),
        format_assistant("ok", "done", []),
    ]
    server = await server_factory(script)
    agent = Agent(model=SGLangChat(server.base_url), tools=[get_weather], max_tool_calls_per_turn=1)
    async with agent:
        result = await agent.run("weather")
    assert result.ok
    assert [s.call.arguments["city"] for s in result.trajectory.steps if s.call] == ["Paris"]
    sent_back = exchanges(server, "/v1/chat/completions")[1]["request"]["messages"]
    assistant = next(m for m in sent_back if m["role"] == "assistant")
    assert len(assistant["tool_calls"]) == 1
    assert len(result.trajectory.calls[0].tool_calls) == 2  # the record keeps what the model said


@pytest.mark.parametrize("mode", ["chat", "tokens"])
@pytest.mark.parametrize("stream", [False, True])
async def test_speculative_accept_length_reaches_record_and_usage(
    mode: str, stream: bool, server_factory: StartServer, tokenizer_path: Path
) -> None:
    server = await server_factory(
        [format_assistant("think " * 20, "answer " * 30, [])], accept_length=3.0
    )
    agent = Agent(model=make_model(mode, server.base_url, tokenizer_path))
    async with agent:
        if stream:
            events = [e async for e in agent.stream("hi")]
            result = events[-1].result
        else:
            result = await agent.run("hi")
    record = result.trajectory.calls[0]
    assert record.spec_verify_ct and record.completion_tokens
    assert record.accept_length == pytest.approx(record.completion_tokens / record.spec_verify_ct)
    assert 2.0 < (result.usage.accept_length or 0) <= 3.0
