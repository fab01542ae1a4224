"""Bad model output, fuzzed: the loop never crashes; broken calls become error observations."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentkit import Agent, EpisodeStatus, tool
from agentkit.messages import ToolMessage
from agentkit.models import SGLangChat
from agentkit.models.sglang_tokens import SGLangTokens
from agentkit.testing import PolicyRequest, SGLangTestServer, build_test_tokenizer


@tool
def lookup(key: str, count: int = 1) -> str:
    """Look a key up.

    Args:
        key: The key.
        count: How many.
    """
    return f"{key}x{count}"


FRAGMENTS = [
    "<think>",
    "</think>",
    "<tool_call>",
    "</tool_call>",
    "<arg_key>",
    "</arg_key>",
    "<arg_value>",
    "</arg_value>",
    "lookup",
    "\n",
    "key",
    "count",
    "nope",
    "{",
    '"',
    "3",
    "true",
    "plain text ",
    "<|user|>",
    "<tool_",
    "</arg",
]

raw_outputs = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=8), max_size=30).map("".join)


class Script:
    """The policy answers the fuzzed text first, then a clean final answer."""

    def __init__(self) -> None:
        self.first = ""

    def __call__(self, request: PolicyRequest) -> str:
        if request.assistant_turns == 0:
            return self.first
        return "<think>ok</think>\nfinal"


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[tuple[SGLangTestServer, Script, Any]]:
    script = Script()
    with SGLangTestServer(policy=script) as server:
        yield server, script, build_test_tokenizer()


@pytest.mark.parametrize("mode", ["chat", "tokens"])
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=raw_outputs)
def test_fuzzed_model_output_never_crashes_the_loop(
    mode: str, text: str, fuzz_server: tuple[SGLangTestServer, Script, Any]
) -> None:
    server, script, tokenizer_path = fuzz_server
    script.first = text

    async def main() -> Any:
        model = (
            SGLangChat(server.base_url)
            if mode == "chat"
            else SGLangTokens(server.base_url, tokenizer_path)
        )
        async with Agent(model=model, tools=[lookup], max_turns=4) as agent:
            return await agent.run("fuzz")

    result = anyio.run(main)
    assert result.status in {
        EpisodeStatus.COMPLETED,
        EpisodeStatus.TRUNCATED,
        EpisodeStatus.MAX_TURNS,
    }, result.error
    assert result.trajectory.end is not None
    for message in result.messages:
        if isinstance(message, ToolMessage) and message.is_error:
            assert message.content.startswith("Error:")
    first_call = result.trajectory.calls[0]
    if mode == "tokens" and "<tool_call>" in text and result.usage.requests > 1:
        # the model tried to call a tool: it got an observation back (result or error)
        assert any(isinstance(m, ToolMessage) for m in result.messages)
    assert first_call.finish_reason is not None
