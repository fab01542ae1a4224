"""Token mode renders the first prompt once and appends ``glm45.generation_prompt``: that must be
exactly what the template adds for ``add_generation_prompt`` (``render`` itself is checked
against the published template, both ways, in ``tests/dialects/test_glm45_render.py``), and the
ids a session sends must be the whole render's, encoded at once."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentkit.dialects import glm45
from agentkit.messages import SystemMessage, UserMessage
from agentkit.models.base import ModelRequest
from agentkit.models.sglang_tokens import SGLangTokens
from agentkit.testing import load_test_tokenizer
from tests.dialects.test_glm45_render import messages_strategy, tools_strategy
from tests.models.test_token_perf_segments import TOOLS


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages=messages_strategy, tools=tools_strategy, thinking=st.booleans())
def test_render_with_the_prompt_is_render_without_it_then_the_prompt(
    messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, thinking: bool
) -> None:
    body = glm45.render(messages, tools, enable_thinking=thinking, add_generation_prompt=False)
    full = glm45.render(messages, tools, enable_thinking=thinking, add_generation_prompt=True)
    assert full == body + glm45.generation_prompt(thinking)
    tail = glm45.render_continuation(
        [], after_stop=None, enable_thinking=thinking, add_generation_prompt=True
    )
    assert tail == glm45.generation_prompt(thinking)


@pytest.mark.parametrize("thinking", [True, False])
def test_the_first_call_sends_the_whole_render_encoded_at_once(thinking: bool) -> None:
    tokenizer = load_test_tokenizer()
    model = SGLangTokens("http://127.0.0.1:9", tokenizer)
    request = ModelRequest(
        messages=[SystemMessage(content="Look keys up."), UserMessage(content="Look up k1 (#7).")],
        tools=TOOLS,
        thinking=thinking,
    )
    segments = model.session()._appended(request)
    sent = [i for segment in segments for i in segment.ids]
    messages = [m.to_openai() for m in request.messages]
    assert sent == tokenizer.encode(glm45.render(messages, TOOLS, enable_thinking=thinking))
