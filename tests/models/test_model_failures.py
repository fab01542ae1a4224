"""The model path's failure model: replies validated before they count, typed causes, every
attempt recorded, ``Retry-After``, mid-stream retries with a discard notice, a bounded pool,
malformed tool-call arguments kept with their parse error, and server flavours.

Shapes the SGLang test server never sends come from small aiohttp servers on 127.0.0.1.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
import pytest
from aiohttp import web
from pydantic import ValidationError

from agentkit import Agent, tool
from agentkit.dialects import hermes
from agentkit.dialects.glm45 import format_assistant
from agentkit.events import ModelRetryEvent, RunEvent, TextDelta
from agentkit.messages import UserMessage
from agentkit.models import ModelError, ModelRequest, ModelSettings, SGLangChat
from agentkit.models.chat_wire import tool_calls_from_wire
from agentkit.models.failures import retry_after_seconds
from agentkit.models.transport import RetryPolicy, Transport, default_max_connections
from agentkit.testing import Fault, FaultKind, PolicyRequest, SGLangTestServer
from agentkit.trajectory.records import AttemptCause, EpisodeStatus

pytestmark = pytest.mark.anyio

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
FAST = RetryPolicy(max_attempts=2, initial_backoff_s=0.001, max_backoff_s=0.01)


@tool
def add(a: int, b: int) -> int:
    """Add.

    Args:
        a: first
        b: second
    """
    return a + b


@asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A bare chat-completions server on loopback; yields its URL and the bodies it got."""
    seen: list[dict[str, Any]] = []

    async def route(request: web.Request) -> web.StreamResponse:
        seen.append(await request.json())
        return await handler(request)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", route)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


async def sse(request: web.Request, events: list[Any], *, done: bool = True) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for event in events:
        await response.write(f"data: {json.dumps(event)}\n\n".encode())
    if done:
        await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


def chunk(content: str = "", finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]}


def reply(content: str, finish: str | None = "stop") -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": content}}
    if finish is not None:
        choice["finish_reason"] = finish
    return {"choices": [choice]}


async def run_chat(url: str, *, stream: bool, **kwargs: Any) -> tuple[Any, list[RunEvent]]:
    events: list[RunEvent] = []

    async def collect(event: RunEvent) -> None:
        events.append(event)

    model = SGLangChat(url, retry=kwargs.pop("retry", FAST), **kwargs)
    async with Agent(model=model, tools=[add]) as agent:
        result = await agent.run("hi", event_handler=collect if stream else None)
    return result, events


# --- broken replies never complete ------------------------------------------------------------


@pytest.mark.parametrize(
    ("events", "done", "cause"),
    [
        ([chunk("Hello", "stop")], False, AttemptCause.INCOMPLETE_STREAM),  # no [DONE]
        ([], False, AttemptCause.INCOMPLETE_STREAM),  # a stream that yields nothing
        ([chunk("Hello")], True, AttemptCause.PROTOCOL),  # [DONE] but no finish reason
        ([{"error": {"message": "boom", "code": 500}}], True, AttemptCause.SERVER_ERROR_EVENT),
    ],
    ids=["no-done", "empty", "no-finish", "error-event"],
)
async def test_broken_streams_end_model_error_with_every_attempt_recorded(
    events: list[Any], done: bool, cause: AttemptCause
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await sse(request, events, done=done)

    async with raw_server(handler) as (url, seen):
        result, _ = await run_chat(url, stream=True)
    assert result.status is EpisodeStatus.MODEL_ERROR, result.status
    (call,) = result.trajectory.calls
    assert call.failed and call.error_cause is cause
    assert [a.cause for a in call.attempts] == [cause, cause] and len(seen) == 2


@pytest.mark.parametrize(
    "body",
    [{"id": "x"}, {"choices": []}, reply("Hello", finish=None), {"choices": [{"index": 0}]}],
    ids=["no-choices", "empty-choices", "no-finish-reason", "no-message"],
)
async def test_incomplete_json_replies_are_protocol_errors(body: dict[str, Any]) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response(body)

    async with raw_server(handler) as (url, _):
        result, _ = await run_chat(url, stream=False)
    assert result.status is EpisodeStatus.MODEL_ERROR
    assert [a.cause for a in result.trajectory.calls[0].attempts] == [AttemptCause.PROTOCOL] * 2


async def test_a_rejected_request_is_not_retried_or_failed_over() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response({"error": "bad request"}, status=400)

    async with raw_server(handler) as (a, seen_a), raw_server(handler) as (b, seen_b):
        result, _ = await run_chat(a, stream=False)
        model = SGLangChat([a, b], retry=FAST)
        session = model.session(routing_key="k")
        with pytest.raises(ModelError) as caught:
            await session.generate(ModelRequest(messages=[UserMessage(content="hi")]))
        await model.aclose()
    assert result.status is EpisodeStatus.MODEL_ERROR
    (attempt,) = result.trajectory.calls[0].attempts
    assert attempt.cause is AttemptCause.HTTP_STATUS and attempt.status_code == 400
    assert attempt.retryable is False
    assert not caught.value.can_fail_over and len(caught.value.attempts) == 1
    assert caught.value.record is not None and caught.value.record.failed
    assert len(seen_a) + len(seen_b) == 2  # one for the agent run, one for the session


# --- Retry-After --------------------------------------------------------------------------------


@pytest.mark.parametrize(("header", "cap", "wait"), [("0.3", 5.0, 0.3), ("120", 0.05, 0.05)])
async def test_retry_after_is_honoured_up_to_the_cap(header: str, cap: float, wait: float) -> None:
    calls = 0

    async def handler(request: web.Request) -> web.StreamResponse:
        nonlocal calls
        calls += 1
        if calls == 1:
            return web.json_response(
                {"error": "slow down"}, status=429, headers={"Retry-After": header}
            )
        return web.json_response(reply("Hello"))

    retry = RetryPolicy(max_attempts=2, initial_backoff_s=0.001, max_retry_after_s=cap)
    async with raw_server(handler) as (url, _):
        result, _ = await run_chat(url, stream=False, retry=retry)
    assert result.status is EpisodeStatus.COMPLETED, result.error
    first, second = result.trajectory.calls[0].attempts
    assert first.status_code == 429 and first.retry_after_s == float(header)
    assert first.backoff_s is not None and wait <= first.backoff_s <= max(wait, 0.001)
    assert second.ok


def test_retry_after_parses_seconds_and_http_dates() -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


# --- mid-stream failures ----------------------------------------------------------------------


def long_answer(request: PolicyRequest) -> str:
    return format_assistant("think", "one two three four five six seven eight", [])


async def test_a_reset_mid_stream_is_retried_and_the_caller_told_to_discard() -> None:
    with SGLangTestServer(policy=long_answer, stream_tokens_per_chunk=1) as server:
        server.inject(Fault(FaultKind.CONNECTION_RESET, after_events=8))
        result, events = await run_chat(server.base_url, stream=True)
    assert result.status is EpisodeStatus.COMPLETED, result.error
    kinds = [type(e).__name__ for e in events]
    retry_at = kinds.index("ModelRetryEvent")
    retry = events[retry_at]
    assert isinstance(retry, ModelRetryEvent) and retry.discard_partial and retry.will_retry
    before = [e.text for e in events[:retry_at] if isinstance(e, TextDelta)]
    after = [e.text for e in events[retry_at:] if isinstance(e, TextDelta)]
    assert before, "the failed attempt had streamed some text before the reset"
    assert "".join(after) == result.output == "one two three four five six seven eight"
    first, second = result.trajectory.calls[0].attempts
    assert first.partial and first.cause is AttemptCause.CONNECTION and second.ok


async def test_after_a_mid_stream_failure_the_call_fails_over() -> None:
    with (
        SGLangTestServer(policy=long_answer) as a,
        SGLangTestServer(policy=long_answer) as b,
    ):
        a.inject(Fault(FaultKind.TRUNCATED_STREAM, times=None, after_events=2))
        a_url, b_url = a.base_url, b.base_url
        model = SGLangChat([a_url, b_url], retry=FAST)
        key = next(k for k in (f"ep{i}" for i in range(100)) if model.servers.pick(k) == a_url)
        session = model.session(routing_key=key)
        deltas: list[Any] = []

        async def on_delta(delta: Any) -> None:
            deltas.append(delta)

        response = await session.generate(
            ModelRequest(messages=[UserMessage(content="hi")]), on_delta=on_delta
        )
        await model.aclose()
    attempts = response.record.attempts
    assert [att.server for att in attempts] == [a_url, a_url, b_url]
    assert [att.partial for att in attempts] == [True, True, False]
    assert response.record.server == b_url and response.finish_reason == "stop"
    assert sum(1 for d in deltas if d.kind == "retry" and d.attempt.partial) == 2


# --- tool calls the model botched ---------------------------------------------------------------


def test_malformed_arguments_keep_the_raw_text_and_the_real_error() -> None:
    raw = [
        {"id": "c1", "function": {"name": "add", "arguments": "{'a': 1}"}},
        {"id": "c2", "function": {"name": "add", "arguments": "[1, 2]"}},
        {"id": "c3", "function": {"name": "add", "arguments": '{"a": NaN}'}},
        {"id": "c4", "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'}},
        {"id": "c5", "function": {"arguments": "{}"}},
        {"id": "c6", "function": {"name": "add", "arguments": '{"a": 1e999}'}},
        {"id": "c7", "function": {"name": "add", "arguments": '{"a": 1, "a": 2}'}},
    ]
    calls, problems = tool_calls_from_wire(raw)
    bad, not_object, nan, good, nameless, huge, twice = calls
    assert huge.parse_error and "out of range" in huge.parse_error
    assert twice.parse_error and "'a' is given twice" in twice.parse_error
    assert bad.parse_error and "Expecting property name" in bad.parse_error
    assert bad.raw_arguments == "{'a': 1}" and bad.arguments == {}
    assert not_object.parse_error and "JSON object" in not_object.parse_error
    assert nan.parse_error and "NaN" in nan.parse_error
    assert good.parse_error is None and good.arguments == {"a": 1, "b": 2}
    assert nameless.parse_error and "name" in nameless.parse_error
    for call in calls:  # the wire form is always valid JSON, so the server accepts the turn
        assert isinstance(json.loads(call.to_openai()["function"]["arguments"]), dict)
    assert len(problems) == 6


# --- OpenAI-compatible servers -----------------------------------------------------------------


def split(text: str, size: int = 3) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


@pytest.mark.parametrize("dialect", ["hermes", "glm45"])
async def test_client_side_parsing_leaks_no_markup_into_stream_deltas(dialect: str) -> None:
    if dialect == "hermes":
        raw = hermes.format_assistant("add them", "Let me add.", [("add", {"a": 17, "b": 25})])
    else:
        raw = format_assistant("add them", "Let me add.", [("add", {"a": 17, "b": 25})])

    async def handler(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if body["messages"][-1]["role"] == "tool":
            return await sse(request, [chunk("The sum is 42.", "stop")])
        return await sse(request, [chunk(piece) for piece in split(raw)] + [chunk("", "stop")])

    async with raw_server(handler) as (url, seen):
        result, events = await run_chat(url, stream=True, client_parser=dialect, server="openai")
    assert result.status is EpisodeStatus.COMPLETED, result.error
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert "<" not in text and "Let me add." in text
    first = result.trajectory.calls[0]
    assert first.tool_calls[0].arguments == {"a": 17, "b": 25}
    assert first.reasoning == "add them" and first.content == "Let me add."
    for body in seen:  # a strict OpenAI-compatible server gets no SGLang-only fields
        assert not {
            "chat_template_kwargs",
            "separate_reasoning",
            "return_spec_tokens_details",
        } & set(body)


async def test_sglang_flavour_sends_its_fields() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response(reply("Hello"))

    async with raw_server(handler) as (url, seen):
        result, _ = await run_chat(url, stream=False)
    assert result.ok
    assert {"chat_template_kwargs", "separate_reasoning", "return_spec_tokens_details"} <= set(
        seen[0]
    )


# --- configuration and the pool -----------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [{"max_tokens": 0}, {"temperature": -0.1}, {"top_p": 0.0}, {"top_p": 1.5}, {"top_k": 0}],
)
def test_invalid_settings_raise_where_they_are_built(settings: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ModelSettings(**settings)


def test_invalid_retry_and_pool_settings_raise() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="timeout_s"):
        RetryPolicy(timeout_s=0)
    with pytest.raises(ValueError, match="max_connections"):
        Transport(max_connections=0)
    with pytest.raises(ValueError, match="client_parser"):
        SGLangChat("http://127.0.0.1:1", client_parser="nope")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="server"):
        SGLangChat("http://127.0.0.1:1", server="vllm")  # type: ignore[arg-type]


async def test_the_connection_pool_is_bounded() -> None:
    transport = Transport()
    assert 8 <= transport.max_connections == default_max_connections() <= 512
    assert transport._session().connector is not None
    assert transport._session().connector.limit == transport.max_connections
    await transport.aclose()
    assert Transport(max_connections=7).max_connections == 7


# --- out of file descriptors ------------------------------------------------------------------

_FD_CHILD = """
import json, resource, sys
import anyio
from agentkit import Agent
from agentkit.models import SGLangChat
from agentkit.models.transport import RetryPolicy, Transport, default_max_connections

url, limit, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

async def batch(max_connections):
    retry = RetryPolicy(max_attempts=2, initial_backoff_s=0.01, timeout_s=60)
    model = SGLangChat(url, transport=Transport(retry, max_connections=max_connections))
    out = []
    async with Agent(model=model) as agent:
        async def one(i):
            result = await agent.run(f"hi {i}")
            calls = result.trajectory.calls
            cause = calls[-1].error_cause if calls else None
            out.append([result.status.value, cause.value if cause else None])
        async with anyio.create_task_group() as tg:
            for i in range(runs):
                tg.start_soon(one, i)
    return out

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
unbounded = anyio.run(batch, 100_000)
bounded = anyio.run(batch, None)
print(json.dumps({"unbounded": unbounded, "bounded": bounded, "pool": default_max_connections()}))
"""


def hello(request: PolicyRequest) -> str:
    return format_assistant("", "hello", [])


async def test_running_out_of_descriptors_is_a_model_error_per_run_never_a_crash() -> None:
    with SGLangTestServer(policy=hello, latency_s=0.3) as srv:
        done = await anyio.to_thread.run_sync(
            lambda: subprocess.run(
                [sys.executable, "-c", _FD_CHILD, srv.base_url, "96", "150"],
                capture_output=True,
                text=True,
                timeout=300,
            )
        )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    unbounded, bounded = report["unbounded"], report["bounded"]
    assert report["pool"] == 48  # half the descriptor limit
    assert len(unbounded) == len(bounded) == 150
    # without a bound some runs hit EMFILE: each is a typed model_error, the others complete
    assert {status for status, _ in unbounded} <= {"completed", "model_error"}
    assert ["model_error", "resource_exhausted"] in unbounded
    assert all(
        cause == "resource_exhausted" for status, cause in unbounded if status != "completed"
    )
    # with the default bound every run gets a connection in turn
    assert all(status == "completed" for status, _ in bounded), bounded
