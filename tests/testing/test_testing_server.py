"""The SGLang test server's /v1/chat/completions: shapes, stops, finish reasons, streaming."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import httpx
import pytest

from agentkit.dialects.glm45 import render
from agentkit.testing import Completion, PolicyRequest, SGLangTestServer, load_test_tokenizer

pytestmark = pytest.mark.anyio

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                "required": ["city"],
            },
        },
    }
]
USER = [{"role": "user", "content": "Weather in Paris?"}]
CALL = (
    "<think>look it up</think>\n<tool_call>get_weather\n<arg_key>city</arg_key>\n"
    "<arg_value>Paris</arg_value>\n<arg_key>days</arg_key>\n<arg_value>2</arg_value>\n</tool_call>"
)
TWO_CALLS = (
    "<think>both</think>\nChecking.\n<tool_call>get_weather\n<arg_key>city</arg_key>\n"
    "<arg_value>北京</arg_value>\n</tool_call>\n<tool_call>get_weather\n<arg_key>city</arg_key>\n"
    "<arg_value>Oslo</arg_value>\n<arg_key>days</arg_key>\n<arg_value>3</arg_value>\n</tool_call>"
)
ANSWER = "<think>done</think>\nIt is sunny in Paris."


async def chat(server: SGLangTestServer, **body: Any) -> httpx.Response:
    body.setdefault("model", "glm")
    body.setdefault("messages", USER)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        return await client.post("/v1/chat/completions", json=body)


def sse_events(text: str) -> list[Any]:
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        assert block.startswith("data: "), block
        payload = block[len("data: ") :]
        events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


async def test_tool_call_response_shape() -> None:
    tokenizer = load_test_tokenizer()
    async with SGLangTestServer(policy=[CALL]) as server:
        response = await chat(server, tools=TOOLS)
    assert response.status_code == 200
    data = response.json()
    assert data["object"] == "chat.completion"
    assert data["model"] == "glm"
    choice = data["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["matched_stop"] is None
    message = choice["message"]
    assert message["role"] == "assistant"
    assert message["content"] == ""
    assert message["reasoning_content"] == "look it up"
    [call] = message["tool_calls"]
    assert re.fullmatch(r"call_[0-9a-f]{24}", call["id"])
    assert call["index"] == 0
    assert call["type"] == "function"
    assert call["function"] == {"name": "get_weather", "arguments": '{"city": "Paris", "days": 2}'}
    prompt = render(USER, TOOLS)
    usage = data["usage"]
    assert usage["prompt_tokens"] == len(tokenizer.encode(prompt))
    assert usage["completion_tokens"] == len(tokenizer.encode(CALL)) + 1  # + <|observation|>
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens_details"] is None


async def test_final_answer_stops_on_user_token() -> None:
    async with SGLangTestServer(policy=[ANSWER]) as server:
        data = (await chat(server, tools=TOOLS)).json()
        record = server.generation_requests()[-1]
    choice = data["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["matched_stop"] == 151336
    assert choice["message"]["content"] == "It is sunny in Paris."
    assert choice["message"]["reasoning_content"] == "done"
    assert "tool_calls" not in choice["message"]
    assert record.response == data
    assert record.request["messages"] == USER


async def test_unicode_arguments_and_parallel_calls() -> None:
    async with SGLangTestServer(policy=[TWO_CALLS]) as server:
        data = (await chat(server, tools=TOOLS)).json()
    message = data["choices"][0]["message"]
    assert message["content"] == "Checking."
    assert [c["function"]["arguments"] for c in message["tool_calls"]] == [
        '{"city": "北京"}',
        '{"city": "Oslo", "days": 3}',
    ]
    assert [c["index"] for c in message["tool_calls"]] == [0, 1]
    assert len({c["id"] for c in message["tool_calls"]}) == 2


async def test_explicit_stop_tokens_and_no_stop() -> None:
    policy = [
        Completion("<think>x</think>\nbye", stop="<|endoftext|>"),
        Completion("<think>cut off", stop=None),
    ]
    async with SGLangTestServer(policy=policy) as server:
        first = (await chat(server)).json()["choices"][0]
        second = (await chat(server)).json()
    assert first["finish_reason"] == "stop"
    assert first["matched_stop"] == 151329
    assert second["choices"][0]["finish_reason"] == "length"
    assert second["choices"][0]["message"]["reasoning_content"] == "cut off"
    assert second["usage"]["completion_tokens"] == len(
        load_test_tokenizer().encode("<think>cut off")
    )


async def test_max_tokens_truncates_on_tokens() -> None:
    async with SGLangTestServer(policy=[CALL, CALL]) as server:
        data = (await chat(server, tools=TOOLS, max_tokens=12)).json()
        other = (await chat(server, tools=TOOLS, max_completion_tokens=5)).json()
    choice = data["choices"][0]
    assert choice["finish_reason"] == "length"
    assert choice["matched_stop"] is None
    assert data["usage"]["completion_tokens"] == 12
    assert "tool_calls" not in choice["message"]
    assert other["usage"]["completion_tokens"] == 5


async def test_tool_choice_none_drops_tools_from_prompt() -> None:
    seen: list[PolicyRequest] = []

    def policy(request: PolicyRequest) -> str:
        seen.append(request)
        return CALL

    async with SGLangTestServer(policy=policy) as server:
        data = (await chat(server, tools=TOOLS, tool_choice="none")).json()
    assert seen[0].tools == []
    assert "# Tools" not in seen[0].prompt_text
    assert seen[0].prompt_text == render(USER)
    choice = data["choices"][0]
    assert choice["finish_reason"] == "stop"  # markup is not parsed without tools
    assert "<tool_call>get_weather" in choice["message"]["content"]
    assert "tool_calls" not in choice["message"]


async def test_named_tool_choice_renders_only_that_tool() -> None:
    other = {"type": "function", "function": {"name": "other", "parameters": {"type": "object"}}}
    seen: list[PolicyRequest] = []

    def policy(request: PolicyRequest) -> str:
        seen.append(request)
        return CALL

    async with SGLangTestServer(policy=policy) as server:
        named = {"type": "function", "function": {"name": "get_weather"}}
        ok = await chat(server, tools=[other, *TOOLS], tool_choice=named)
        bad = await chat(server, tools=TOOLS, tool_choice={"function": {"name": "nope"}})
    assert ok.status_code == 200
    assert [t["function"]["name"] for t in seen[0].tools] == ["get_weather"]
    assert bad.status_code == 400


async def test_thinking_off() -> None:
    seen: list[PolicyRequest] = []

    def policy(request: PolicyRequest) -> str:
        seen.append(request)
        return "Paris is sunny."

    async with SGLangTestServer(policy=policy) as server:
        data = (await chat(server, chat_template_kwargs={"enable_thinking": False})).json()
        effort = (await chat(server, reasoning_effort="none")).json()
    assert seen[0].enable_thinking is False
    assert seen[0].prompt_text.endswith("Weather in Paris?/nothink<|assistant|>\n<think></think>")
    message = data["choices"][0]["message"]
    assert message == {"role": "assistant", "content": "Paris is sunny.", "reasoning_content": None}
    assert seen[1].enable_thinking is False
    assert effort["choices"][0]["message"]["content"] == "Paris is sunny."


@pytest.mark.parametrize("tools", [None, TOOLS])
async def test_separate_reasoning_false_keeps_raw_text(tools: list[dict[str, Any]] | None) -> None:
    async with SGLangTestServer(policy=[ANSWER]) as server:
        data = (await chat(server, separate_reasoning=False, tools=tools)).json()
    message = data["choices"][0]["message"]
    assert message["reasoning_content"] is None
    assert message["content"] == ANSWER


async def test_history_with_tool_results_and_string_arguments() -> None:
    seen: list[PolicyRequest] = []

    def policy(request: PolicyRequest) -> str:
        seen.append(request)
        return ANSWER

    history = [
        *USER,
        {
            "role": "assistant",
            "content": None,
            "reasoning_content": "look it up",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "sunny"}]},
    ]
    async with SGLangTestServer(policy=policy) as server:
        response = await chat(server, tools=TOOLS, messages=history)
    assert response.status_code == 200
    prompt = seen[0].prompt_text
    assert prompt.endswith(
        "<|assistant|>\n<think>look it up</think>\n<tool_call>get_weather\n<arg_key>city</arg_key>\n"
        "<arg_value>Paris</arg_value>\n</tool_call><|observation|>\n<tool_response>\nsunny\n"
        "</tool_response><|assistant|>"
    )
    assert seen[0].messages[1]["tool_calls"][0]["function"]["arguments"] == {"city": "Paris"}
    assert seen[0].assistant_turns == 1


@pytest.mark.parametrize(
    ("arguments", "message"),
    [("{not json", "must be valid JSON"), ('["a"]', "must be a JSON object")],
)
async def test_invalid_history_arguments_are_a_400(arguments: str, message: str) -> None:
    history = [
        *USER,
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "x", "arguments": arguments}}
            ],
        },
    ]
    async with SGLangTestServer(policy=[ANSWER]) as server:
        response = await chat(server, messages=history)
    assert response.status_code == 400
    body = response.json()
    assert body["object"] == "error"
    assert message in body["message"]
    assert body["code"] == 400


async def test_bad_requests() -> None:
    async with SGLangTestServer(policy=[ANSWER]) as server:
        empty = await chat(server, messages=[])
        role = await chat(server, messages=[{"role": "robot", "content": "x"}])
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            garbage = await client.post("/v1/chat/completions", content=b"{nope")
    assert empty.status_code == 400
    assert "messages" in empty.json()["message"]
    assert role.status_code == 400
    assert garbage.status_code == 400


async def test_exhausted_policy_is_a_clear_500() -> None:
    async with SGLangTestServer(policy=[ANSWER]) as server:
        assert (await chat(server)).status_code == 200
        response = await chat(server)
    assert response.status_code == 500
    assert "exhausted" in response.json()["message"]


async def test_policy_exception_is_a_500() -> None:
    def policy(request: PolicyRequest) -> str:
        raise ValueError("boom")

    async with SGLangTestServer(policy=policy) as server:
        response = await chat(server)
    assert response.status_code == 500
    assert "boom" in response.json()["message"]


async def test_async_policy_and_cache_report() -> None:
    async def policy(request: PolicyRequest) -> Completion:
        return Completion(f"<think>t</think>\nturn {request.call_index}")

    async with SGLangTestServer(policy=policy, enable_cache_report=True) as server:
        first = (await chat(server)).json()
        second = (await chat(server)).json()
    assert first["choices"][0]["message"]["content"] == "turn 0"
    assert second["choices"][0]["message"]["content"] == "turn 1"
    assert first["usage"]["prompt_tokens_details"] == {"cached_tokens": 0}
    cached = second["usage"]["prompt_tokens_details"]["cached_tokens"]
    assert cached == second["usage"]["prompt_tokens"] - 1


async def test_return_token_ids_and_logprobs() -> None:
    tokenizer = load_test_tokenizer()
    async with SGLangTestServer(policy=[ANSWER]) as server:
        data = (await chat(server, return_token_ids=True, logprobs=True)).json()
    choice = data["choices"][0]
    assert choice["prompt_token_ids"] == tokenizer.encode(render(USER))
    assert choice["response_token_ids"] == [*tokenizer.encode(ANSWER), 151336]
    items = choice["logprobs"]["content"]
    assert len(items) == len(tokenizer.encode(ANSWER))
    assert all(item["logprob"] < 0 for item in items)


async def test_sglang_extensions() -> None:
    tokenizer = load_test_tokenizer()
    body: dict[str, Any] = {
        "return_meta_info": True,
        "return_spec_tokens_details": True,
        "return_cached_tokens_details": True,
        "return_input_ids_in_sglext": True,
        "return_output_ids_in_sglext": True,
    }
    async with SGLangTestServer(policy=[ANSWER, ANSWER], accept_length=2.0) as server:
        data = (await chat(server, **body)).json()
        streamed = sse_events((await chat(server, stream=True, **body)).text)
    output = [*tokenizer.encode(ANSWER), 151336]
    meta = data["choices"][0]["meta_info"]
    assert meta["finish_reason"] == {"type": "stop", "matched": 151336}
    assert meta["completion_tokens"] == len(output)
    assert meta["spec_verify_ct"] == math.ceil(len(output) / 2)
    ext = data["sglext"]
    assert ext["spec_tokens_details"]["spec_verify_ct"] == meta["spec_verify_ct"]
    assert ext["input_ids"] == tokenizer.encode(render(USER))
    assert ext["output_ids"] == output
    assert data["usage"]["prompt_tokens_details"] == {"cached_tokens": 0}
    tail = streamed[-2]
    assert tail["choices"] == []
    assert tail["sglext"]["output_ids"] == output


# -- streaming ------------------------------------------------------------------------------


def merge_stream(events: list[Any]) -> dict[str, Any]:
    """Concatenate stream deltas into a non-stream style message."""
    content, reasoning = "", ""
    calls: dict[int, dict[str, Any]] = {}
    finish = matched = None
    for event in events:
        if event == "[DONE]" or not event["choices"]:
            continue
        choice = event["choices"][0]
        delta = choice["delta"]
        content += delta.get("content") or ""
        reasoning += delta.get("reasoning_content") or ""
        for call in delta.get("tool_calls") or []:
            slot = calls.setdefault(call["index"], {"id": None, "name": None, "arguments": ""})
            slot["id"] = slot["id"] or call["id"]
            slot["name"] = slot["name"] or call["function"]["name"]
            slot["arguments"] += call["function"]["arguments"] or ""
        if choice["finish_reason"] is not None:
            finish, matched = choice["finish_reason"], choice["matched_stop"]
    return {
        "content": content,
        "reasoning": reasoning or None,
        "calls": [(c["name"], c["arguments"]) for _, c in sorted(calls.items())],
        "ids": [c["id"] for _, c in sorted(calls.items())],
        "finish": finish,
        "matched": matched,
    }


STREAM_CASES = [
    CALL,
    TWO_CALLS,
    ANSWER,
    "<think>é 北京 🤖 multi-byte</think>\nDone: 北京 🤖.",
    Completion("<think>cut off in the mid", stop=None),
    "plain answer without think",
    "<think>a</think>\nbefore <tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>x</arg_value>\n</tool_call>",
]


@pytest.mark.parametrize("case", STREAM_CASES)
@pytest.mark.parametrize("per_chunk", [None, 1, 3])
@pytest.mark.parametrize("with_tools", [True, False])
async def test_stream_deltas_equal_non_stream(
    case: str | Completion, per_chunk: int | None, with_tools: bool
) -> None:
    extra: dict[str, Any] = {"tools": TOOLS} if with_tools else {}
    async with SGLangTestServer(policy=[case, case], stream_tokens_per_chunk=per_chunk) as server:
        whole = (await chat(server, **extra)).json()
        streamed = await chat(server, stream=True, **extra)
    assert streamed.headers["content-type"].startswith("text/event-stream")
    merged = merge_stream(sse_events(streamed.text))
    choice = whole["choices"][0]
    message = choice["message"]
    assert merged["content"] == message["content"]
    assert merged["reasoning"] == message["reasoning_content"]
    expected_calls = [
        (c["function"]["name"], c["function"]["arguments"]) for c in message.get("tool_calls", [])
    ]
    assert merged["calls"] == expected_calls
    assert all(re.fullmatch(r"call_[0-9a-f]{24}", i) for i in merged["ids"])
    assert merged["finish"] == choice["finish_reason"]
    assert merged["matched"] == choice["matched_stop"]


async def test_stream_chunk_sequence() -> None:
    async with SGLangTestServer(policy=[CALL]) as server:
        response = await chat(
            server, tools=TOOLS, stream=True, stream_options={"include_usage": True}
        )
        record = server.generation_requests()[-1]
    events = sse_events(response.text)
    assert events[-1] == "[DONE]"
    first = events[0]
    assert first["object"] == "chat.completion.chunk"
    assert first["choices"][0]["delta"] == {
        "role": "assistant",
        "content": "",
        "reasoning_content": None,
    }
    usage_chunk = events[-2]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["completion_tokens"] == len(load_test_tokenizer().encode(CALL)) + 1
    final = events[-3]["choices"][0]
    assert final["finish_reason"] == "tool_calls"
    assert all(value is None for value in final["delta"].values())
    middle = events[1:-3]
    assert all(e["choices"][0]["finish_reason"] is None for e in middle)
    kinds = []
    for event in middle:
        delta = event["choices"][0]["delta"]
        kind = next(
            k for k in ("reasoning_content", "content", "tool_calls") if delta[k] is not None
        )
        kinds.append(kind)
    assert kinds[0] == "reasoning_content"
    assert kinds[-1] == "tool_calls"
    start = next(e for e in middle if e["choices"][0]["delta"]["tool_calls"])
    call = start["choices"][0]["delta"]["tool_calls"][0]
    assert call["function"] == {"name": "get_weather", "arguments": ""}
    assert call["id"].startswith("call_")
    assert len({e["id"] for e in events[:-1]}) == 1
    assert record.chunks == events[:-1]


async def test_stream_without_usage_and_buffered_reasoning() -> None:
    async with SGLangTestServer(policy=[ANSWER], stream_tokens_per_chunk=1) as server:
        response = await chat(server, stream=True, stream_reasoning=False)
    events = sse_events(response.text)
    reasoning_chunks = [
        e for e in events[:-1] if e["choices"] and e["choices"][0]["delta"].get("reasoning_content")
    ]
    assert [c["choices"][0]["delta"]["reasoning_content"] for c in reasoning_chunks] == ["done"]
    assert all(e["choices"] for e in events[:-1])  # no usage chunk


@pytest.mark.parametrize("case", [ANSWER, CALL, TWO_CALLS])
@pytest.mark.parametrize("with_tools", [True, False])
async def test_stream_equals_non_stream_without_separate_reasoning(
    case: str, with_tools: bool
) -> None:
    extra: dict[str, Any] = {"separate_reasoning": False}
    if with_tools:
        extra["tools"] = TOOLS
    async with SGLangTestServer(policy=[case, case], stream_tokens_per_chunk=2) as server:
        whole = (await chat(server, **extra)).json()["choices"][0]
        merged = merge_stream(sse_events((await chat(server, stream=True, **extra)).text))
    assert merged["reasoning"] is None
    assert whole["message"]["reasoning_content"] is None
    assert merged["content"] == whole["message"]["content"]
    assert merged["content"].startswith("<think>")
    assert merged["finish"] == whole["finish_reason"]
