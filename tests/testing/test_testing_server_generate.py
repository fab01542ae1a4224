"""The SGLang test server's native /generate (token mode)."""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import httpx
import pytest

from agentkit.dialects.glm45 import STOP_TOKEN_IDS, render
from agentkit.testing import Completion, PolicyRequest, SGLangTestServer, load_test_tokenizer

pytestmark = pytest.mark.anyio

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            },
        },
    }
]
MESSAGES = [
    {"role": "system", "content": "You are helpful."},
    {"role": "user", "content": "Weather in Paris?"},
]
CALL = (
    "<think>look</think>\n<tool_call>get_weather\n<arg_key>city</arg_key>\n"
    "<arg_value>Paris</arg_value>\n</tool_call>"
)
ANSWER = "<think>done</think>\nSunny."
TOKEN_MODE = {
    "skip_special_tokens": False,
    "no_stop_trim": True,
    "stop_token_ids": list(STOP_TOKEN_IDS),
}


def prompt_ids(messages: list[dict[str, Any]] = MESSAGES, **kwargs: Any) -> list[int]:
    return load_test_tokenizer().encode(render(messages, **kwargs))


async def generate(server: SGLangTestServer, **body: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        return await client.post("/generate", json=body)


async def test_token_mode_response() -> None:
    tokenizer = load_test_tokenizer()
    ids = prompt_ids(tools=TOOLS)
    async with SGLangTestServer(policy=[CALL]) as server:
        response = await generate(
            server,
            input_ids=ids,
            sampling_params={"max_new_tokens": 200, **TOKEN_MODE},
            return_logprob=True,
            rid="req-1",
        )
    assert response.status_code == 200
    data = response.json()
    expected = [*tokenizer.encode(CALL), 151338]
    assert data["output_ids"] == expected
    assert data["text"] == CALL + "<|observation|>"
    meta = data["meta_info"]
    assert meta["id"] == "req-1"
    assert meta["finish_reason"] == {"type": "stop", "matched": 151338}
    assert meta["prompt_tokens"] == len(ids)
    assert meta["completion_tokens"] == len(expected)
    assert meta["cached_tokens"] == 0
    assert meta["weight_version"] == "default"
    assert meta["e2e_latency"] >= 0
    logprobs = meta["output_token_logprobs"]
    assert [item[1] for item in logprobs] == expected
    assert all(item[0] < 0 and item[2] is None for item in logprobs)
    assert meta["input_token_logprobs"] == []
    assert meta["spec_verify_ct"] == math.ceil(len(expected) / 2)
    assert meta["spec_accept_length"] == pytest.approx(len(expected) / meta["spec_verify_ct"])


async def test_policy_sees_recovered_conversation() -> None:
    seen: list[PolicyRequest] = []

    def policy(request: PolicyRequest) -> str:
        seen.append(request)
        return ANSWER

    history: list[dict[str, Any]] = [
        *MESSAGES,
        {
            "role": "assistant",
            "reasoning_content": "look",
            "content": "",
            "tool_calls": [
                {"function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}}
            ],
        },
        {"role": "tool", "content": '{"temp": 21}'},
    ]
    async with SGLangTestServer(policy=policy) as server:
        await generate(
            server, input_ids=prompt_ids(history, tools=TOOLS), sampling_params=TOKEN_MODE
        )
        await generate(server, text=render(MESSAGES, enable_thinking=False))
    request = seen[0]
    assert request.endpoint == "generate"
    assert request.tools == TOOLS
    assert request.enable_thinking is True
    assert [m["role"] for m in request.messages] == ["system", "user", "assistant", "tool"]
    assert request.messages[2]["tool_calls"][0]["function"]["arguments"] == {
        "city": "Paris",
        "days": 2,
    }
    assert request.messages[2]["reasoning_content"] == "look"
    assert request.messages[3]["content"] == '{"temp": 21}'
    assert request.assistant_turns == 1
    assert request.first_user_message == "Weather in Paris?"
    assert seen[1].enable_thinking is False
    assert seen[1].messages[1] == {"role": "user", "content": "Weather in Paris?"}


async def test_default_max_new_tokens_is_128() -> None:
    long = "<think>" + "word " * 300 + "</think>"
    async with SGLangTestServer(policy=[long]) as server:
        data = (await generate(server, input_ids=prompt_ids())).json()
    assert data["meta_info"]["finish_reason"] == {"type": "length", "length": 128}
    assert len(data["output_ids"]) == 128


async def test_stop_trim_and_skip_special_tokens() -> None:
    async with SGLangTestServer(policy=[ANSWER, ANSWER]) as server:
        trimmed = (await generate(server, input_ids=prompt_ids())).json()
        kept = (await generate(server, input_ids=prompt_ids(), sampling_params=TOKEN_MODE)).json()
    assert trimmed["text"] == ANSWER  # default: stop token trimmed from text only
    assert trimmed["output_ids"][-1] == 151336
    assert kept["text"] == ANSWER + "<|user|>"
    assert kept["output_ids"] == trimmed["output_ids"]


async def test_custom_stop_token_ids_and_ignore_eos() -> None:
    tokenizer = load_test_tokenizer()
    async with SGLangTestServer(policy=[ANSWER, Completion("a<|user|>b", stop=None)]) as server:
        early = (
            await generate(
                server, input_ids=prompt_ids(), sampling_params={"stop_token_ids": [151351]}
            )
        ).json()
        through = (
            await generate(server, input_ids=prompt_ids(), sampling_params={"ignore_eos": True})
        ).json()
    assert early["meta_info"]["finish_reason"] == {"type": "stop", "matched": 151351}
    assert early["output_ids"][-1] == 151351
    assert early["text"] == "<think>done"
    assert through["output_ids"] == tokenizer.encode("a<|user|>b")
    assert through["meta_info"]["finish_reason"]["type"] == "length"


async def test_stop_strings() -> None:
    async with SGLangTestServer(policy=[ANSWER]) as server:
        data = (
            await generate(server, input_ids=prompt_ids(), sampling_params={"stop": ["Sun"]})
        ).json()
    assert data["meta_info"]["finish_reason"] == {"type": "stop", "matched": "Sun"}
    assert data["text"] == "<think>done</think>\n"


async def test_prefix_cache_and_deterministic_logprobs() -> None:
    first_prompt = prompt_ids(tools=TOOLS)
    body = {"sampling_params": TOKEN_MODE, "return_logprob": True}
    async with SGLangTestServer(policy=[CALL, ANSWER, ANSWER]) as server:
        first = (await generate(server, input_ids=first_prompt, **body)).json()
        follow = (
            first_prompt
            + first["output_ids"]
            + load_test_tokenizer().encode(
                "\n<tool_response>\nsunny\n</tool_response><|assistant|>"
            )
        )
        second = (await generate(server, input_ids=follow, **body)).json()
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            assert (await client.post("/flush_cache")).status_code == 200
        third = (await generate(server, input_ids=follow, **body)).json()
    assert second["meta_info"]["cached_tokens"] == len(first_prompt) + len(first["output_ids"])
    assert third["meta_info"]["cached_tokens"] == 0
    assert (
        second["meta_info"]["output_token_logprobs"] == third["meta_info"]["output_token_logprobs"]
    )
    async with SGLangTestServer(policy=[CALL]) as other:
        again = (await generate(other, input_ids=first_prompt, **body)).json()
    assert (
        again["meta_info"]["output_token_logprobs"] == first["meta_info"]["output_token_logprobs"]
    )


async def test_input_logprobs_and_text_in_logprobs() -> None:
    ids = prompt_ids()
    async with SGLangTestServer(policy=[ANSWER]) as server:
        data = (
            await generate(
                server,
                input_ids=ids,
                return_logprob=True,
                logprob_start_len=0,
                return_text_in_logprobs=True,
                sampling_params=TOKEN_MODE,
            )
        ).json()
    inputs = data["meta_info"]["input_token_logprobs"]
    assert [item[1] for item in inputs] == ids
    assert inputs[0][0] is None
    assert all(item[0] < 0 for item in inputs[1:])
    texts = [item[2] for item in data["meta_info"]["output_token_logprobs"]]
    assert "".join(texts) == ANSWER + "<|user|>"


async def test_speculative_stats_can_be_disabled_or_tuned() -> None:
    async with SGLangTestServer(policy=[ANSWER], accept_length=None) as plain:
        off = (await generate(plain, input_ids=prompt_ids())).json()
    async with SGLangTestServer(policy=[ANSWER], accept_length=3.0) as fast:
        on = (await generate(fast, input_ids=prompt_ids())).json()
    assert not any(key.startswith("spec_") for key in off["meta_info"])
    count = on["meta_info"]["completion_tokens"]
    assert on["meta_info"]["spec_verify_ct"] == math.ceil(count / 3)


async def test_streaming_is_cumulative() -> None:
    body = {"input_ids": prompt_ids(), "sampling_params": TOKEN_MODE, "return_logprob": True}
    text = "<think>é 北京 🤖</think>\nDone 🤖."
    async with SGLangTestServer(policy=[text, text], stream_tokens_per_chunk=1) as server:
        whole = (await generate(server, **body)).json()
        response = await generate(server, stream=True, **body)
    blocks = [b for b in response.text.split("\n\n") if b.strip()]
    assert blocks[-1] == "data: [DONE]"
    chunks = [json.loads(b[len("data: ") :]) for b in blocks[:-1]]
    assert len(chunks) == len(whole["output_ids"])
    for before, after in itertools.pairwise(chunks):
        assert after["text"].startswith(before["text"])
        assert after["output_ids"][: len(before["output_ids"])] == before["output_ids"]
        assert before["meta_info"]["finish_reason"] is None
    assert all("\ufffd" not in c["text"] for c in chunks)
    last = chunks[-1]
    assert last["text"] == whole["text"]
    assert last["output_ids"] == whole["output_ids"]
    assert last["meta_info"]["finish_reason"] == whole["meta_info"]["finish_reason"]
    assert last["meta_info"]["output_token_logprobs"] == whole["meta_info"]["output_token_logprobs"]


async def test_abort_request_ends_a_stream() -> None:
    long = "<think>" + "step " * 200 + "</think>"
    server = SGLangTestServer(policy=[long], chunk_delay_s=0.02, accept_length=None)
    async with server, httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        body = {
            "input_ids": prompt_ids(),
            "rid": "r-9",
            "stream": True,
            "sampling_params": {"max_new_tokens": 1000},
        }
        async with client.stream("POST", "/generate", json=body) as response:
            chunks = []
            async for line in response.aiter_lines():
                if not line.startswith("data: {"):
                    continue
                chunks.append(json.loads(line[len("data: ") :]))
                if len(chunks) == 2:
                    assert (
                        await client.post("/abort_request", json={"rid": "r-9"})
                    ).status_code == 200
    assert chunks[-1]["meta_info"]["finish_reason"]["type"] == "abort"
    assert len(chunks[-1]["output_ids"]) < 400


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"text": "a", "input_ids": [1]},
        {"input_ids": [[1, 2]]},
        {"input_ids": [999999]},
        {"input_ids": "nope"},
    ],
)
async def test_bad_generate_requests(body: dict[str, Any]) -> None:
    async with SGLangTestServer(policy=[ANSWER]) as server:
        response = await generate(server, **body)
    assert response.status_code == 400
    assert response.json()["error"]["message"]


async def test_non_template_prompt_still_answers() -> None:
    seen: list[PolicyRequest] = []

    def policy(request: PolicyRequest) -> str:
        seen.append(request)
        return "free text"

    async with SGLangTestServer(policy=policy) as server:
        data = (await generate(server, text="just some text")).json()
    assert data["text"] == "free text"
    assert seen[0].messages == []
    assert seen[0].prompt_text == "just some text"
