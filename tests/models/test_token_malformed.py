"""Token mode: a GLM-4.5 call with broken arguments is not run with what parsed of them.

The SGLang test server answers with the markup under test; the loop must answer the call with the
parser's real error (``ToolCall.parse_error``) instead of running the tool with partial arguments
(which made the tool reply "Field required"), and a well-formed call next to it still runs."""

from __future__ import annotations

import pytest

from agentkit import Agent, tool
from agentkit.dialects import glm45
from agentkit.messages import AssistantMessage, ToolMessage
from agentkit.models.client_markup import calls_from_parsed
from agentkit.models.sglang_tokens import SGLangTokens
from agentkit.testing import SGLangTestServer, build_test_tokenizer
from agentkit.trajectory.store import JsonlStore, read_store

pytestmark = pytest.mark.anyio

RAN: list[str] = []

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "calculator",
            "parameters": {
                "type": "object",
                "properties": {"expression": {"type": "string"}},
                "required": ["expression"],
            },
        },
    }
]


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression.

    Args:
        expression: The expression.
    """
    RAN.append(expression)
    return "4"


KEY_WITHOUT_VALUE = (
    "<think>call it</think>\n<tool_call>calculator\n<arg_key>expression</arg_key>\n</tool_call>"
)
GOOD = (
    "<tool_call>calculator\n<arg_key>expression</arg_key>\n<arg_value>1+3</arg_value>\n</tool_call>"
)


def test_a_key_without_value_sets_parse_error_on_that_call_only() -> None:
    text = KEY_WITHOUT_VALUE + "\n" + GOOD
    calls, malformed = calls_from_parsed(glm45.parse(text, TOOLS, thinking=True))
    assert [c.name for c in calls] == ["calculator", "calculator"]
    assert calls[0].parse_error is not None and "no <arg_value>" in calls[0].parse_error
    assert calls[0].raw_arguments is not None and "<arg_key>expression" in calls[0].raw_arguments
    assert calls[1].parse_error is None and calls[1].arguments == {"expression": "1+3"}
    assert malformed == [], "a problem attached to a call must not also count as a lost call"
    # the wire form of the broken call stays valid JSON for a strict server
    assert calls[0].arguments_json() == "{}"


def test_an_unclosed_call_still_counts_as_malformed_markup() -> None:
    text = "<tool_call>calculator\n<arg_key>expression</arg_key>\n<arg_value>2+2"
    calls, malformed = calls_from_parsed(glm45.parse(text, TOOLS, thinking=False))
    assert calls == []
    assert len(malformed) == 1


async def test_token_mode_answers_the_broken_call_with_the_parse_error(tmp_path) -> None:
    RAN.clear()
    script = [KEY_WITHOUT_VALUE + "\n" + GOOD, "<think>done</think>\nThe answer is 4."]
    store_path = tmp_path / "store.jsonl"
    async with SGLangTestServer(policy=script) as server:
        model = SGLangTokens(server.base_url, build_test_tokenizer())
        async with JsonlStore(store_path) as store, Agent(model=model, tools=[calculator]) as agent:
            result = await agent.run("2+2?", recorder=store)
    assert result.ok, result.error
    assert RAN == ["1+3"], "only the well-formed call may run"
    assistant = next(m for m in result.messages if isinstance(m, AssistantMessage))
    broken, good = assistant.tool_calls
    results = {m.tool_call_id: m for m in result.messages if isinstance(m, ToolMessage)}
    assert results[broken.id].is_error
    assert "no <arg_value>" in results[broken.id].content
    assert "Field required" not in results[broken.id].content
    assert not results[good.id].is_error and results[good.id].content == "4"
    # exactly two observations: no extra placeholder for the broken call
    assert len(results) == 2
    traj = read_store(store_path).episodes[0]
    steps = [s for s in traj.steps if s.step_type == "tool"]
    assert [s.error_type for s in steps] == ["MalformedToolCall", None]
    assert traj.calls[0].tool_calls[0].parse_error == broken.parse_error
