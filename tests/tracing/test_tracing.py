"""OpenTelemetry spans of instrumented agents, read back from the SDK's in-memory exporter."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

pytest.importorskip("opentelemetry.sdk", reason="the otel extra is not installed")

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from agentkit import Agent, EpisodeStatus, ToolError, ToolMessage, tool
from agentkit.dialects.glm45 import format_assistant
from agentkit.models import SGLangChat
from agentkit.models.sglang_tokens import SGLangTokens
from agentkit.models.transport import RetryPolicy
from agentkit.testing import DialoguePolicy, SGLangTestServer, build_test_tokenizer
from agentkit.tracing import instrument

pytestmark = pytest.mark.anyio


@tool
async def lookup(city: str, delay_ms: int = 0) -> str:
    """Look up a city's population.

    Args:
        city: The city.
        delay_ms: How long the lookup takes.
    """
    await anyio.sleep(delay_ms / 1000)
    if city == "Atlantis":
        raise ToolError("no such city")
    return f"{city}: {len(city)} million"


def turn(reasoning: str, *calls: tuple[str, dict[str, Any]], content: str = "") -> str:
    return format_assistant(reasoning, content, list(calls), thinking=True)


def script(*cities: str) -> list[str]:
    delays = [30, 0, 15, 5]
    calls = [("lookup", {"city": c, "delay_ms": delays[i % 4]}) for i, c in enumerate(cities)]
    return [turn("Look them all up at once.", *calls), turn("Done.", content="Found them.")]


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def children(spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


def op(span: ReadableSpan) -> Any:
    return (span.attributes or {}).get("gen_ai.operation.name")


async def test_run_model_and_parallel_tool_spans(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    async with SGLangTestServer(policy=script("Paris", "Oslo", "Atlantis")) as server:
        agent: Agent[None, str] = Agent(model=SGLangChat(server.base_url), tools=[lookup])
        traced = instrument(agent, tracer_provider=provider, capture_content=True)
        async with traced:
            result = await traced.run("Populations of Paris, Oslo and Atlantis?", task_id="t1")
    assert result.ok
    spans = list(exporter.get_finished_spans())
    roots = [s for s in spans if s.parent is None]
    assert len(roots) == 1
    root = roots[0]
    assert root.name == "invoke_agent agent"
    attrs = root.attributes or {}
    assert attrs["gen_ai.operation.name"] == "invoke_agent"
    assert attrs["gen_ai.conversation.id"] == result.episode_id
    assert attrs["agentkit.run.status"] == "completed"
    assert attrs["agentkit.task_id"] == "t1"
    assert attrs["gen_ai.usage.input_tokens"] == result.usage.prompt_tokens > 0

    kids = children(spans, root)
    chats = [s for s in kids if op(s) == "chat"]
    tools = [s for s in kids if op(s) == "execute_tool"]
    assert len(chats) == 2 and len(tools) == 3 and len(kids) == 5
    assert all(s.context.trace_id == root.context.trace_id for s in spans)
    first = chats[0].attributes or {}
    assert chats[0].kind is SpanKind.CLIENT and chats[0].name == "chat default"
    assert first["gen_ai.request.model"] == "default"
    assert first["gen_ai.provider.name"] == "sglang"
    assert first["gen_ai.response.finish_reasons"] == ("tool_calls",)
    assert first["gen_ai.usage.input_tokens"] == result.trajectory.calls[0].prompt_tokens
    assert first["gen_ai.usage.output_tokens"] == result.trajectory.calls[0].completion_tokens
    assert (chats[1].attributes or {})["gen_ai.response.finish_reasons"] == ("stop",)

    call_ids = {m.tool_call_id: m for m in result.messages if isinstance(m, ToolMessage)}
    by_id = {(s.attributes or {})["gen_ai.tool.call.id"]: s for s in tools}
    assert set(by_id) == set(call_ids)
    for call_id, span in by_id.items():
        a = span.attributes or {}
        assert span.name == "execute_tool lookup" and a["gen_ai.tool.name"] == "lookup"
        assert a["gen_ai.tool.call.result"] == call_ids[call_id].content
        failed = call_ids[call_id].is_error
        assert (span.status.status_code is StatusCode.ERROR) == failed
        if failed:
            assert a["error.type"] == "ToolError" and "Atlantis" in str(
                a["gen_ai.tool.call.arguments"]
            )


async def test_concurrent_runs_keep_separate_trees(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    prompts = {f"Cities batch {i}?": script(f"A{i}", f"B{i}") for i in range(4)}
    async with SGLangTestServer(policy=DialoguePolicy(prompts)) as server:
        agent: Agent[None, str] = Agent(model=SGLangChat(server.base_url), tools=[lookup])
        traced = instrument(agent, tracer_provider=provider)
        results: dict[str, Any] = {}

        async def one(prompt: str) -> None:
            results[prompt] = await traced.run(prompt)

        async with traced, anyio.create_task_group() as tg:
            for prompt in prompts:
                tg.start_soon(one, prompt)
    assert all(r.ok for r in results.values())
    spans = list(exporter.get_finished_spans())
    roots = [s for s in spans if s.parent is None]
    assert len(roots) == 4 and len({r.context.trace_id for r in roots}) == 4
    for root in roots:
        episode = (root.attributes or {})["gen_ai.conversation.id"]
        kids = children(spans, root)
        assert sorted(op(s) for s in kids) == ["chat", "chat", "execute_tool", "execute_tool"]
        for span in kids:
            assert (span.attributes or {})["gen_ai.conversation.id"] == episode
            assert span.context.trace_id == root.context.trace_id
    assert len(spans) == 4 * 5


async def test_model_failure_marks_the_call_and_the_run(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    async with SGLangTestServer(policy=script("Paris")) as server:
        server.fail_next(2, status=503)
        model = SGLangChat(
            server.base_url, retry=RetryPolicy(max_attempts=2, initial_backoff_s=0.0)
        )
        traced = instrument(Agent(model=model, tools=[lookup]), tracer_provider=provider)
        async with traced:
            result = await traced.run("Population of Paris?")
    assert result.status is EpisodeStatus.MODEL_ERROR
    spans = {op(s): s for s in exporter.get_finished_spans()}
    assert set(spans) == {"invoke_agent", "chat"}
    chat = spans["chat"]
    assert chat.status.status_code is StatusCode.ERROR
    assert (chat.attributes or {})["agentkit.model.attempts"] == 2
    assert (chat.attributes or {})["error.type"]
    run = spans["invoke_agent"]
    assert run.status.status_code is StatusCode.ERROR
    assert (run.attributes or {})["error.type"] == "model_error"


async def test_token_mode_and_stream(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    async with SGLangTestServer(policy=script("Lima")) as server:
        model = SGLangTokens(server.base_url, build_test_tokenizer())
        traced = instrument(Agent(model=model, tools=[lookup]), tracer_provider=provider)
        async with traced:
            events = [e async for e in traced.stream("Population of Lima?")]
    assert events[-1].type == "final"
    spans = list(exporter.get_finished_spans())
    root = next(s for s in spans if s.parent is None)
    kids = children(spans, root)
    assert sorted(op(s) for s in kids) == ["execute_tool", "text_completion", "text_completion"]
    completion = next(s for s in kids if op(s) == "text_completion")
    attrs = completion.attributes or {}
    assert completion.name == "text_completion default"
    assert attrs["gen_ai.request.stream"] is True
    assert attrs["gen_ai.usage.input_tokens"] > 0 and attrs["gen_ai.usage.output_tokens"] > 0


async def test_the_original_agent_is_untouched_and_emits_nothing(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    async with SGLangTestServer(policy=script("Rome") * 2) as server:
        agent: Agent[None, str] = Agent(model=SGLangChat(server.base_url), tools=[lookup])
        traced = instrument(agent, tracer_provider=provider)
        assert agent.tools_by_name["lookup"] is lookup
        assert traced.tools_by_name["lookup"] is not lookup
        async with agent:
            assert (await agent.run("Population of Rome?")).ok
    assert exporter.get_finished_spans() == ()
