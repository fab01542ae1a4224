"""End-to-end runs of the planner loop against the SGLang test server, chat and token mode."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from pydantic import BaseModel

from agentkit import Agent, EpisodeStatus, RunContext, ToolError, tool
from agentkit.dialects.glm45 import format_assistant
from agentkit.events import FinalEvent, ReasoningDelta, TextDelta, ToolCallEvent, ToolResultEvent
from agentkit.messages import AssistantMessage, ToolMessage
from agentkit.models import SGLangChat
from agentkit.models.base import Model
from agentkit.models.sglang_tokens import SGLangTokens
from agentkit.models.transport import RetryPolicy
from agentkit.testing import PolicyRequest, SGLangTestServer, build_test_tokenizer
from agentkit.trajectory.recorder import MemoryRecorder

pytestmark = pytest.mark.anyio


@tool
def get_weather(city: str, days: int = 1) -> dict[str, Any]:
    """Weather forecast for a city.

    Args:
        city: City name.
        days: Number of days.
    """
    return {"city": city, "days": days, "temp_c": 21 if city == "Paris" else 12}


@tool
async def convert(celsius: float) -> str:
    """Convert Celsius to Fahrenheit.

    Args:
        celsius: Temperature in Celsius.
    """
    await anyio.lowlevel.checkpoint()
    return f"{celsius * 9 / 5 + 32:.1f}F"


class Report(BaseModel):
    city: str
    fahrenheit: str


def call(name: str, **arguments: Any) -> tuple[str, dict[str, Any]]:
    return (name, arguments)


def turn(reasoning: str, content: str, *calls: tuple[str, dict[str, Any]], thinking: bool) -> str:
    return format_assistant(
        reasoning if thinking else None, content, list(calls), thinking=thinking
    )


def weather_script(thinking: bool) -> list[str]:
    return [
        turn(
            "I need both forecasts.",
            "Checking two cities.",
            call("get_weather", city="Paris", days=2),
            call("get_weather", city="Oslo"),
            thinking=thinking,
        ),
        turn("Paris is 21C; convert it.", "", call("convert", celsius=21), thinking=thinking),
        turn(
            "Done.",
            json.dumps({"city": "Paris", "fahrenheit": "69.8F"}),
            thinking=thinking,
        ),
    ]


@pytest.fixture(scope="module")
def tokenizer_path() -> Any:
    return build_test_tokenizer()


def exchanges(server: SGLangTestServer, path: str) -> list[dict[str, Any]]:
    """The successful generation exchanges at ``path``, as request/response dicts."""
    return [
        {"request": r.request, "response": r.response}
        for r in server.requests
        if r.path == path and r.status == 200 and not r.dropped
    ]


def make_model(mode: str, url: str, tokenizer_path: Any, **kw: Any) -> Model:
    if mode == "chat":
        return SGLangChat(url, **kw)
    return SGLangTokens(url, tokenizer_path, **kw)


@pytest.fixture
async def server_factory() -> AsyncIterator[Any]:
    servers: list[SGLangTestServer] = []

    async def start(policy: Any, **kw: Any) -> SGLangTestServer:
        server = SGLangTestServer(policy=policy, **kw)
        await server.__aenter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.__aexit__(None, None, None)


@pytest.mark.parametrize("mode", ["chat", "tokens"])
@pytest.mark.parametrize("thinking", [True, False])
async def test_two_tool_turns_with_parallel_calls_and_structured_output(
    mode: str, thinking: bool, server_factory: Any, tokenizer_path: Any
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


async def test_token_mode_context_is_append_only(server_factory: Any, tokenizer_path: Any) -> None:
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
    mode: str, server_factory: Any, tokenizer_path: Any
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


async def test_max_turns_returns_partial_result(server_factory: Any) -> None:
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


async def test_invalid_structured_output_is_sent_back_then_accepted(server_factory: Any) -> None:
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


async def test_structured_output_gives_up_after_bounded_retries(server_factory: Any) -> None:
    server = await server_factory(lambda r: format_assistant("x", "not json", []))
    agent: Agent[None, Report] = Agent(
        model=SGLangChat(server.base_url), output_type=Report, output_retries=1
    )
    async with agent:
        result = await agent.run("report")
    assert result.status is EpisodeStatus.OUTPUT_INVALID
    assert result.usage.requests == 2


async def test_final_result_tool_ends_the_run(server_factory: Any) -> None:
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


async def test_deps_reach_tools_through_run_context(server_factory: Any) -> None:
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


@pytest.mark.parametrize("mode", ["chat", "tokens"])
async def test_stream_yields_typed_events_in_order(
    mode: str, server_factory: Any, tokenizer_path: Any
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


async def test_retries_are_visible_and_recover(server_factory: Any) -> None:
    server = await server_factory([format_assistant("hi", "hello", [])])
    server.fail_next(2, status=503)
    model = SGLangChat(server.base_url, retry=RetryPolicy(max_attempts=3, initial_backoff_s=0.01))
    async with Agent(model=model) as agent:
        result = await agent.run("hi")
    assert result.ok
    attempts = result.trajectory.calls[0].attempts
    assert [a.ok for a in attempts] == [False, False, True]
    assert [a.status_code for a in attempts[:2]] == [503, 503]


async def test_model_failure_after_last_retry_is_a_clear_status(server_factory: Any) -> None:
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


async def test_cancelling_a_run_leaves_a_consistent_record(server_factory: Any) -> None:
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


async def test_thinking_can_be_switched_per_run(server_factory: Any) -> None:
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


async def test_conversation_keeps_one_token_context_across_user_turns(
    server_factory: Any, tokenizer_path: Any
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


async def test_max_tool_calls_per_turn_keeps_only_the_first_calls(server_factory: Any) -> None:
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


async def test_episode_records_prompt_and_final_messages(server_factory: Any) -> None:
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


@pytest.mark.parametrize("mode", ["chat", "tokens"])
@pytest.mark.parametrize("stream", [False, True])
async def test_speculative_accept_length_reaches_record_and_usage(
    mode: str, stream: bool, server_factory: Any, tokenizer_path: Any
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


async def test_later_user_turns_and_output_retries_are_recorded_as_user_steps(
    server_factory: Any,
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
    server_factory: Any,
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
