"""A malformed tool call is the model's mistake: it is not run, the model is told the real parse
error with a hint for its dialect, the turn goes back to the server as valid JSON, and the
episode goes on. Chat mode is served by a small OpenAI-compatible server on loopback that writes
exactly the broken arguments under test; token mode by the SGLang test server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from agentkit import Agent, EpisodeStatus, tool
from agentkit.dialects import hermes
from agentkit.dialects.glm45 import repair_hint as glm45_hint
from agentkit.dialects.repair import json_repair_hint
from agentkit.messages import ToolMessage
from agentkit.models import SGLangChat
from agentkit.models.sglang_tokens import SGLangTokens
from agentkit.testing import SGLangTestServer, build_test_tokenizer
from agentkit.tool_turn import dialect_of
from agentkit.trajectory.records import EnvStepRecord
from agentkit.trajectory.store import JsonlStore, read_store

pytestmark = pytest.mark.anyio

RAN: list[str] = []


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression.

    Args:
        expression: The expression.
    """
    RAN.append(expression)
    return "4"


def _reply(message: dict[str, Any], finish: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    }


class ChatServer:
    """Serves ``replies`` in order on ``/v1/chat/completions`` and keeps the request bodies."""

    def __init__(self, replies: list[dict[str, Any]]) -> None:
        self.replies = list(replies)
        self.bodies: list[dict[str, Any]] = []
        self.base_url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        return web.json_response(self.replies.pop(0))


@pytest.fixture
async def chat_server() -> AsyncIterator[Any]:
    runners: list[web.AppRunner] = []

    async def start(replies: list[dict[str, Any]]) -> ChatServer:
        server = ChatServer(replies)
        app = web.Application()
        app.router.add_post("/v1/chat/completions", server._handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        server.base_url = f"http://127.0.0.1:{port}"
        return server

    yield start
    for runner in runners:
        await runner.cleanup()


BROKEN = '{"expression": "2+2"'  # the closing brace is missing


async def test_chat_mode_malformed_arguments_are_an_observation_not_a_crash(
    chat_server: Any, tmp_path: Any
) -> None:
    RAN.clear()
    call = {"id": "call_x1", "type": "function", "function": {"name": "calculator"}}
    call["function"]["arguments"] = BROKEN  # type: ignore[index]
    server = await chat_server(
        [
            _reply({"role": "assistant", "content": "", "tool_calls": [call]}, "tool_calls"),
            _reply({"role": "assistant", "content": "It is 4."}, "stop"),
        ]
    )
    store = JsonlStore(tmp_path / "s.jsonl")
    async with Agent(model=SGLangChat(server.base_url), tools=[calculator]) as agent:
        result = await agent.run("2+2?", recorder=store)
    store.close()

    assert result.status is EpisodeStatus.COMPLETED and result.text == "It is 4."
    assert RAN == []  # the broken call was not run with made-up arguments
    tool_message = next(m for m in result.messages if isinstance(m, ToolMessage))
    assert tool_message.tool_call_id == "call_x1"
    assert "Field required" not in tool_message.content
    assert "Expecting" in tool_message.content  # the JSON decoder's own message
    assert json_repair_hint() in tool_message.content

    # the turn went back to the server with valid JSON arguments; the record keeps the raw text
    sent = server.bodies[1]["messages"]
    assistant = next(m for m in sent if m["role"] == "assistant")
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {}
    tool_turn = next(m for m in sent if m["role"] == "tool")
    assert tool_turn["tool_call_id"] == "call_x1"

    episode = read_store(tmp_path / "s.jsonl").episodes[0]
    step = next(s for s in episode.steps if isinstance(s, EnvStepRecord) and s.step_type == "tool")
    assert step.status == "invalid_arguments" and step.error_type == "MalformedToolCall"
    assert step.call is not None and step.call.raw_arguments == BROKEN
    assert step.error and "Expecting" in step.error
    assert episode.end is not None and episode.end.status is EpisodeStatus.COMPLETED


async def test_a_good_call_beside_a_broken_one_still_runs(chat_server: Any) -> None:
    RAN.clear()
    broken = {"id": "c1", "type": "function", "function": {"name": "calculator"}}
    broken["function"]["arguments"] = "[1, 2]"  # type: ignore[index]
    good = {
        "id": "c2",
        "type": "function",
        "function": {"name": "calculator", "arguments": '{"expression": "1+3"}'},
    }
    server = await chat_server(
        [
            _reply(
                {"role": "assistant", "content": "", "tool_calls": [broken, good]}, "tool_calls"
            ),
            _reply({"role": "assistant", "content": "done"}, "stop"),
        ]
    )
    async with Agent(model=SGLangChat(server.base_url), tools=[calculator]) as agent:
        result = await agent.run("go")
    assert result.ok
    assert RAN == ["1+3"]
    results = {m.tool_call_id: m for m in result.messages if isinstance(m, ToolMessage)}
    assert results["c1"].is_error and not results["c2"].is_error
    assert results["c2"].content == "4"


async def test_token_mode_malformed_markup_gets_the_glm_hint() -> None:
    RAN.clear()
    script = [
        # the call is never closed: no runnable call comes out, only a parser problem
        "<think>call it</think>\n<tool_call>calculator\n<arg_key>expression</arg_key>\n"
        "<arg_value>2+2",
        "<think>retry</think>\nI could not call the tool.",
    ]
    async with SGLangTestServer(policy=script) as server:
        model = SGLangTokens(server.base_url, build_test_tokenizer())
        async with Agent(model=model, tools=[calculator]) as agent:
            result = await agent.run("2+2?")
    assert result.ok
    assert RAN == []
    errors = [m for m in result.messages if isinstance(m, ToolMessage) and m.is_error]
    assert len(errors) == 1, "the malformed call got no observation"
    assert glm45_hint() in errors[0].content
    steps = [s for s in result.trajectory.steps if s.step_type == "tool"]
    assert steps and all(s.error_type == "MalformedToolCall" for s in steps)


def test_the_hint_follows_the_model_dialect() -> None:
    assert dialect_of(SGLangChat("http://127.0.0.1:9")) == "json"
    assert dialect_of(SGLangChat("http://127.0.0.1:9", client_parser="hermes")) == "hermes"
    assert dialect_of(SGLangTokens("http://127.0.0.1:9", build_test_tokenizer())) == "glm45"

    class Custom:
        name, mode, dialect = "c", "chat", "hermes"

    assert dialect_of(Custom()) == "hermes"
    assert "<arg_key>" in glm45_hint() and "<arg_key>" not in hermes.repair_hint()
    assert '"arguments"' in hermes.repair_hint()
    assert "valid JSON arguments" in json_repair_hint()
