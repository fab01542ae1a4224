"""Token mode sends ``/generate`` bodies as JSON bytes whose ``input_ids`` part is kept from call
to call (only the new ids are encoded). The bytes must be the same JSON value as encoding the
body dict whole, the server must receive exactly the ids recorded, a context set anew
(``import_state``) must be encoded afresh, and a body that does not encode must fail its
attempt as before."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentkit import Agent, tool
from agentkit.models import generate_wire
from agentkit.models import sglang_tokens as tokens_module
from agentkit.models.generate_wire import generate_body, ids_json, joined_ids
from agentkit.models.sglang_tokens import SGLangTokens, TokenSession
from agentkit.models.transport import _dumps
from agentkit.testing import PolicyRequest, SGLangTestServer, load_test_tokenizer
from agentkit.trajectory.recorder import MemoryRecorder
from agentkit.trajectory.records import ModelCallRecord

pytestmark = pytest.mark.anyio

TOOL_CALLS = 3


def policy(request: PolicyRequest) -> str:
    turn = request.assistant_turns
    if turn < TOOL_CALLS:
        return (
            f"<think>step {turn}</think>\n<tool_call>lookup\n<arg_key>key</arg_key>\n"
            f"<arg_value>k{turn}</arg_value>\n</tool_call>"
        )
    return "<think>done</think>\nAll done."


@tool
def lookup(key: str) -> str:
    """Look up a key.

    Args:
        key: The key.
    """
    return f"value of {key}, é"


def test_the_pieces_join_to_the_whole_encoding() -> None:
    ids = [0, 1, 151329, 2**40, 7]
    for cut in range(len(ids) + 1):
        assert joined_ids(ids_json(ids[:cut]), ids_json(ids[cut:])) == ids_json(ids)
    fields = {"rid": "r-1", "input_ids": [9, 9], "sampling_params": {"stop": ["ü"], "t": 0.5}}
    body = generate_body(fields, ids_json(ids))
    assert json.loads(body) == {**fields, "input_ids": ids}
    assert json.loads(body) == json.loads(_dumps({**fields, "input_ids": ids}))
    assert json.loads(generate_body({}, b"")) == {"input_ids": []}
    big = [2**70, 3]  # beyond orjson: the standard library's encoding, same value
    assert json.loads(b"[" + ids_json(big) + b"]") == big


async def run(
    monkeypatch: pytest.MonkeyPatch, *, stream: bool = False, episodes: int = 2
) -> tuple[list[ModelCallRecord], list[dict[str, Any]], list[tuple[bytes, dict[str, Any]]]]:
    """Episodes against the test server: the call records, the bodies the server received and
    each (bytes sent, body dict) pair built by the session."""
    built: list[tuple[bytes, dict[str, Any]]] = []
    wire = TokenSession._wire

    def spy(self: TokenSession, body: dict[str, Any], input_ids: list[int]) -> Any:
        sent, kept = wire(self, body, input_ids)
        assert isinstance(sent, bytes) and kept is not None
        built.append((sent, {**body, "input_ids": list(input_ids)}))
        return sent, kept

    monkeypatch.setattr(TokenSession, "_wire", spy)
    recorder = MemoryRecorder()
    async with SGLangTestServer(policy=policy) as server:
        model = SGLangTokens(server.base_url, load_test_tokenizer())
        agent: Agent[Any, Any] = Agent(
            model=model, tools=[lookup], instructions="Look keys up.", recorder=recorder
        )
        try:
            for number in range(episodes):
                question = f"Look up three keys ({number})."
                if stream:
                    events = [event async for event in agent.stream(question)]
                    assert events
                else:
                    result = await agent.run(question)
                    assert result.output == "All done."
        finally:
            await agent.aclose()
        received = [r.request for r in server.requests if r.path == "/generate"]
    calls = [item for item in recorder.items if isinstance(item, ModelCallRecord)]
    return calls, received, built


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_every_body_is_the_dict_encoding_and_the_server_gets_the_recorded_ids(
    monkeypatch: pytest.MonkeyPatch, stream: bool
) -> None:
    calls, received, built = await run(monkeypatch, stream=stream)
    assert len(calls) == len(received) == len(built) == 2 * (TOOL_CALLS + 1)
    for sent, whole in built:
        assert json.loads(sent) == whole
        assert json.loads(sent) == json.loads(_dumps(whole))
    for call, body, (_, whole) in zip(calls, received, built, strict=True):
        assert body == whole
        assert body["input_ids"] == call.input_ids
        assert body["stream"] is stream


async def test_only_the_new_ids_are_encoded_after_the_first_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sizes: list[int] = []

    def counted(ids: list[int]) -> bytes:
        sizes.append(len(ids))
        return generate_wire.ids_json(ids)

    monkeypatch.setattr(tokens_module, "ids_json", counted)
    calls, _, _ = await run(monkeypatch, episodes=1)
    longest_context = max(len(call.input_ids or []) for call in calls)
    first_prompt = len(calls[0].input_ids or [])
    # the first prompt once, then appended segments and outputs: never the whole context again
    assert max(sizes) == first_prompt
    assert sum(sizes) == longest_context + len(calls[-1].output_ids or [])


async def test_a_context_set_anew_is_encoded_afresh() -> None:
    model = SGLangTokens("http://127.0.0.1:9", load_test_tokenizer())
    session = model.session()
    assert session._sent_json([5, 6]) == b"5,6"
    assert session._ids_json == b"" and session._ids_json_of == (session.ids, 0)
    session.ids.extend([1, 2])  # the same list, longer: not what the JSON was kept for
    assert session._sent_json([1, 2, 3]) == b"1,2,3"
    session.import_state({"ids": [7, 8], "consumed": 1, "last_stop": None})
    assert session._sent_json([7, 8, 9]) == b"7,8,9"
    assert session._sent_json([7, 8]) == b"7,8"


async def test_a_body_that_does_not_encode_fails_its_attempt_as_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = TokenSession._body

    def odd(self: TokenSession, *args: Any) -> dict[str, Any]:
        fields = body(self, *args)
        fields["sampling_params"] = {**fields["sampling_params"], "odd": object()}
        return fields

    monkeypatch.setattr(TokenSession, "_body", odd)
    async with SGLangTestServer(policy=policy) as server:
        model = SGLangTokens(server.base_url, load_test_tokenizer())
        session = model.session()
        wire, kept = session._wire(odd(session, *_body_args(session)), [1, 2])
        assert isinstance(wire, dict) and kept is None  # handed to the transport as it is
        recorder = MemoryRecorder()
        agent: Agent[Any, Any] = Agent(model=model, tools=[lookup], recorder=recorder)
        try:
            result = await agent.run("Look up three keys.")
        finally:
            await agent.aclose()
        assert not [r for r in server.requests if r.path == "/generate"]
    assert result.status.value != "completed"
    calls = [item for item in recorder.items if isinstance(item, ModelCallRecord)]
    assert len(calls) == 1
    assert [a.cause and a.cause.value for a in calls[0].attempts] == ["client_error"]


def _body_args(session: TokenSession) -> tuple[Any, ...]:
    from agentkit.models.base import ModelRequest
    from agentkit.models.replay_wire import ReplayRequest

    request = ModelRequest.model_validate({"messages": [], "episode_id": "e", "call_index": 0})
    return (request, [1, 2], False, ReplayRequest())
