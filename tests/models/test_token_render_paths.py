"""Token mode's direct renderings give the template's text: a tool result written directly
(``glm45.render_tool_result``) is ``render_continuation`` of that tool message, and a prompt
rendered with the tools block kept per tool list (``render_with_tools_block``) is ``render``
with the tools."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentkit.dialects import glm45
from agentkit.messages import SystemMessage, ToolMessage, UserMessage
from agentkit.models.base import ModelRequest
from agentkit.models.sglang_tokens import SGLangTokens
from agentkit.testing import load_test_tokenizer

STOPS = [None, *glm45.STOP_TOKENS]
TEXT = st.lists(
    st.one_of(
        st.text(st.characters(codec="utf-8"), max_size=8),
        st.sampled_from(["\n", " ", "<|observation|>", "<|user|>", "</tool_response>"]),
    ),
    max_size=6,
).map("".join)


def tool(name: str) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": "Look up é.",
            "parameters": {"type": "object", "properties": {"key": {"type": "string"}}},
        },
    }


@given(content=TEXT, stop=st.sampled_from(STOPS))
def test_a_tool_result_is_rendered_as_the_continuation(content: str, stop: str | None) -> None:
    message = {"role": "tool", "tool_call_id": "c", "name": "t", "content": content}
    expected = glm45.render_continuation([message], after_stop=stop, add_generation_prompt=False)
    assert glm45.render_tool_result(content, after_stop=stop) == expected


def test_a_tool_result_after_an_unknown_stop_is_refused_as_by_the_continuation() -> None:
    message = {"role": "tool", "tool_call_id": "c", "content": "x"}
    with pytest.raises(ValueError, match="after_stop") as general:
        glm45.render_continuation([message], after_stop="<|nope|>", add_generation_prompt=False)
    with pytest.raises(ValueError, match="after_stop") as direct:
        glm45.render_tool_result("x", after_stop="<|nope|>")
    assert str(direct.value) == str(general.value)


@given(
    tools=st.lists(st.sampled_from(["a", "b", "lookup"]), max_size=3).map(
        lambda names: [tool(n) for n in names]
    ),
    text=TEXT,
    thinking=st.booleans(),
)
def test_a_prompt_with_the_kept_tools_block_is_the_rendered_one(
    tools: list[dict[str, Any]], text: str, thinking: bool
) -> None:
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": text}]
    expected = glm45.render(messages, tools or None, enable_thinking=thinking)
    given_block = glm45.render_with_tools_block(
        messages, glm45.tools_block(tools), enable_thinking=thinking
    )
    assert given_block == expected


def first_prompt_text(model: SGLangTokens, tools: list[dict[str, Any]]) -> str:
    # the list itself, as the loop sends it (validation would copy it)
    request = ModelRequest.model_construct(
        messages=[SystemMessage(content="s"), UserMessage(content="q")], tools=tools
    )
    assert request.tools is tools
    segments = model.session(routing_key="k")._first_prompt(request)
    return model.tokenizer.decode([i for s in segments for i in s.ids])


def test_the_first_prompt_follows_a_tool_list_changed_in_place() -> None:
    model = SGLangTokens("http://127.0.0.1:9", load_test_tokenizer())
    tools = [tool("a")]
    assert '"name": "a"' in first_prompt_text(model, tools)
    assert model.tools_text(tools) is model.tools_text(tools)  # kept for the same list
    tools[0] = tool("b")  # a tool replaced: rendered again
    text = first_prompt_text(model, tools)
    assert '"name": "b"' in text and '"name": "a"' not in text
    tools.append(tool("lookup"))  # one added: rendered again
    assert text != first_prompt_text(model, tools)
    expected = glm45.render(
        [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}],
        tools,
        add_generation_prompt=True,
    )
    assert first_prompt_text(model, tools) == expected


def test_tool_results_are_appended_as_the_continuation_renders_them() -> None:
    model = SGLangTokens("http://127.0.0.1:9", load_test_tokenizer())
    session = model.session(routing_key="k")
    for stop in STOPS:
        session.ids, session.consumed, session.last_stop = [1, 2], 2, stop
        results: list[ToolMessage | UserMessage] = [
            ToolMessage(tool_call_id="c1", name="t", content="one <|user|> é"),
            ToolMessage(tool_call_id="c2", name="t", content="two"),
            UserMessage(content="and now?"),
            ToolMessage(tool_call_id="c3", name="t", content="three"),
        ]
        request = ModelRequest(
            messages=[UserMessage(content="q"), UserMessage(content="r"), *results]
        )
        segments = session._continuation(request)
        marker = stop
        for message, segment in zip(results, segments, strict=False):
            text = glm45.render_continuation(
                [message.to_openai()], after_stop=marker, add_generation_prompt=False
            )
            assert segment.ids == model.tokenizer.encode(text)
            marker = "<|observation|>" if isinstance(message, ToolMessage) else None
        assert [s.source.value for s in segments] == ["tool", "tool", "user", "tool", "template"]


@given(
    tools=st.lists(st.sampled_from(["a", "lookup"]), max_size=2).map(
        lambda names: [tool(n) for n in names]
    ),
    text=TEXT,
    system=st.booleans(),
    thinking=st.booleans(),
)
def test_a_prompt_is_its_head_then_its_messages(
    tools: list[dict[str, Any]], text: str, system: bool, thinking: bool
) -> None:
    messages = [{"role": "system", "content": text}] if system else []
    messages.append({"role": "user", "content": text})
    block = glm45.tools_block(tools)
    whole = glm45.render_with_tools_block(
        messages, block, enable_thinking=thinking, add_generation_prompt=False
    )
    assert whole == "[gMASK]<sop>" + block + glm45.render_messages(
        messages, enable_thinking=thinking
    )


@given(
    tools=st.lists(st.sampled_from(["a", "b", "lookup"]), max_size=3).map(
        lambda names: [tool(n) for n in names]
    ),
    text=TEXT,
    thinking=st.booleans(),
)
def test_the_first_prompt_ids_are_the_whole_prompt_encoded(
    tools: list[dict[str, Any]], text: str, thinking: bool
) -> None:
    model = SGLangTokens("http://127.0.0.1:9", load_test_tokenizer())
    request = ModelRequest.model_construct(
        messages=[SystemMessage(content=text), UserMessage(content=text)],
        tools=tools,
        thinking=thinking,
    )
    expected = model.tokenizer.encode(
        glm45.render(
            [m.to_openai() for m in request.messages], tools or None, enable_thinking=thinking
        )
    )
    for _ in range(2):  # the head's ids worked out, then kept
        segments = model.session(routing_key="k")._first_prompt(request)
        assert [i for s in segments for i in s.ids] == expected
