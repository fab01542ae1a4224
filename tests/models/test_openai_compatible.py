"""Other OpenAI-compatible servers (vLLM, llama.cpp, Ollama without a tool parser): the chat
client parses Hermes/Qwen-style tool-call markup left in ``content`` on its side."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from agentkit import Agent, tool
from agentkit.dialects import hermes
from agentkit.messages import ToolMessage
from agentkit.models import SGLangChat

pytestmark = pytest.mark.anyio


@tool
def add(a: int, b: int) -> int:
    """Add.

    Args:
        a: first
        b: second
    """
    return a + b


def reply(messages: list[dict[str, Any]]) -> str:
    if messages[-1]["role"] == "tool":
        return f"The sum is {messages[-1]['content']}."
    return hermes.format_assistant("add them", "Let me add.", [("add", {"a": 17, "b": 25})])


@pytest.fixture
async def plain_server() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []

    async def chat(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append(body)
        message = {"role": "assistant", "content": reply(body["messages"])}
        payload = {
            "id": "x",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }
        return web.json_response(payload)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


async def test_hermes_calls_in_content_are_parsed_client_side(
    plain_server: tuple[str, list[dict[str, Any]]],
) -> None:
    url, seen = plain_server
    model = SGLangChat(url, model="qwen", client_parser="hermes", speculative_stats=False)
    async with Agent(model=model, tools=[add]) as agent:
        result = await agent.run("17 + 25?")
    assert result.ok, result.error
    assert result.output == "The sum is 42."
    assert [m.content for m in result.messages if isinstance(m, ToolMessage)] == ["42"]
    first = result.trajectory.calls[0]
    assert first.finish_reason == "tool_calls" and first.content == "Let me add."
    assert first.tool_calls[0].arguments == {"a": 17, "b": 25}
    sent_back = seen[1]["messages"][-2]
    assert sent_back["tool_calls"][0]["function"]["name"] == "add"
    assert json.loads(sent_back["tool_calls"][0]["function"]["arguments"]) == {"a": 17, "b": 25}
    assert "return_spec_tokens_details" not in seen[0]


async def test_without_a_client_parser_the_markup_stays_text(
    plain_server: tuple[str, list[dict[str, Any]]],
) -> None:
    url, _ = plain_server
    async with Agent(model=SGLangChat(url), tools=[add]) as agent:
        result = await agent.run("17 + 25?")
    assert result.ok and "<tool_call>" in (result.output or "")
    assert result.usage.tool_calls == 0
