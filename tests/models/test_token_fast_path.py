"""Token mode's one-coroutine call (one server, no stream) must give what the layered path
(``recorded_call`` + ``ServerPool.call``, taken with a per-server limit) gives: the same
record of a successful call and, when every attempt fails, a ``ModelError`` carrying the
failed call's record."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from agentkit.messages import UserMessage
from agentkit.models.base import ModelError, ModelRequest
from agentkit.models.sglang_tokens import SGLangTokens
from agentkit.models.transport import RetryPolicy
from agentkit.testing import PolicyRequest, SGLangTestServer, load_test_tokenizer

pytestmark = pytest.mark.anyio

CALL = "<think>r</think>\n<tool_call>lookup\n<arg_key>key</arg_key>\n<arg_value>k1</arg_value>\n</tool_call>"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {"type": "object", "properties": {"key": {"type": "string"}}},
        },
    }
]
# what differs from call to call by design: clocks, ids, the server's port
VARYING = {"started_at", "latency_s", "elapsed_s", "id", "rid", "server", "attempts", "e2e_latency"}


def policy(request: PolicyRequest) -> str:
    return CALL


def request() -> ModelRequest:
    return ModelRequest(
        messages=[UserMessage(content="Look up k1.")], tools=TOOLS, episode_id="e", call_index=0
    )


def stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if k not in VARYING}
    if isinstance(value, list):
        return [stable(v) for v in value]
    return value


async def one_call(limit: int | None) -> tuple[dict[str, Any], int]:
    async with SGLangTestServer(policy=policy) as server:
        model = SGLangTokens(
            server.base_url, load_test_tokenizer(), max_concurrency_per_server=limit
        )
        assert (model.servers.sole is None) is (limit is not None)
        try:
            response = await model.session(routing_key="k").generate(request())
        finally:
            await model.aclose()
    record = response.record
    return record.model_dump(mode="json"), len(record.attempts)


async def test_a_call_records_the_same_on_both_paths() -> None:
    fast, fast_attempts = await one_call(None)
    layered, layered_attempts = await one_call(1000)
    assert fast_attempts == layered_attempts == 1
    assert fast["tool_calls"] and fast["tool_calls"][0]["name"] == "lookup"
    assert stable(fast) == stable(layered)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("limit", [None, 1000], ids=["one-coroutine", "layered"])
async def test_a_call_that_fails_every_attempt_carries_its_record(limit: int | None) -> None:
    retry = RetryPolicy(max_attempts=2, initial_backoff_s=0.0, max_backoff_s=0.0)
    model = SGLangTokens(
        f"http://127.0.0.1:{closed_port()}",
        load_test_tokenizer(),
        retry=retry,
        max_concurrency_per_server=limit,
    )
    try:
        with pytest.raises(ModelError) as caught:
            await model.session(routing_key="k").generate(request())
    finally:
        await model.aclose()
    record = caught.value.record
    assert record is not None
    assert record.error
    assert [a.cause and a.cause.value for a in record.attempts] == ["connection", "connection"]
    assert record.input_ids and record.appended
    assert record.input_ids == [i for segment in record.appended for i in segment.ids]
