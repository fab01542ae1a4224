"""What a run holds per chat call is smaller without reading differently: the records of calls
sent the same sampling params share one read-only copy, and repeated strings (finish reasons,
tool names) are one object each. Records read, compare and store as before."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable
from typing import Any

import pytest

from agentkit.messages import UserMessage
from agentkit.models import ModelRequest, ModelSettings, SGLangChat
from agentkit.models.chat_wire import tool_calls_from_wire, validate_chat_reply
from agentkit.testing import SGLangTestServer
from agentkit.trajectory.records import ModelCallRecord, SharedParams

pytestmark = pytest.mark.anyio


def _request(settings: ModelSettings | None = None, thinking: bool = True) -> ModelRequest:
    return ModelRequest(
        messages=[UserMessage(content="hi")],
        episode_id="ep_1",
        settings=settings or ModelSettings(),
        thinking=thinking,
    )


async def _records(model: SGLangChat, requests: list[ModelRequest]) -> list[ModelCallRecord]:
    session = model.session(routing_key="k")
    return [(await session.generate(request)).record for request in requests]


async def test_calls_sent_the_same_params_share_one_read_only_copy() -> None:
    with SGLangTestServer(policy=["a", "b", "c", "d"]) as server:
        model = SGLangChat(server.base_url)
        try:
            first, second, other, again = await _records(
                model, [_request(), _request(), _request(thinking=False), _request()]
            )
        finally:
            await model.aclose()
    assert first.sampling_params is second.sampling_params
    assert type(first.sampling_params) is SharedParams
    assert other.sampling_params["chat_template_kwargs"] == {"enable_thinking": False}
    assert first.sampling_params["chat_template_kwargs"] == {"enable_thinking": True}
    assert again.sampling_params == first.sampling_params
    # the record reads, dumps and stores as one built with a plain dict of the same values
    plain = ModelCallRecord(
        **{
            **{name: getattr(first, name) for name in first.model_fields_set},
            "sampling_params": copy.deepcopy(dict(first.sampling_params)),
        }
    )
    assert first.model_dump() == plain.model_dump()
    assert first.model_dump_json() == plain.model_dump_json()
    assert first.model_fields_set == plain.model_fields_set
    assert type(first.model_dump()["sampling_params"]) is dict


def test_shared_params_refuse_changes_and_copy_to_plain_dicts() -> None:
    model = SGLangChat("http://h:1")
    body = model.session(routing_key="k")._body(_request(), False)
    shared = model.share_sampling(body)
    assert type(shared) is SharedParams and model.share_sampling(dict(body)) is shared
    nested = shared["chat_template_kwargs"]
    changes: list[Callable[[], object]] = [
        lambda: shared.__setitem__("max_tokens", 1),
        lambda: shared.update(max_tokens=1),
        lambda: shared.pop("model"),
        lambda: nested.__setitem__("enable_thinking", False),
    ]
    for change in changes:
        with pytest.raises(TypeError, match="shared"):
            change()
    for copied in (
        dict(shared),
        copy.copy(shared),
        copy.deepcopy(shared),
        pickle.loads(pickle.dumps(shared)),
    ):
        assert copied == shared
        assert type(copied) is dict
        copied["max_tokens"] = 1  # a copy is the caller's own
    assert type(copy.deepcopy(shared)["chat_template_kwargs"]) is dict
    assert shared["max_tokens"] == 4096


def test_params_holding_a_list_are_not_shared() -> None:
    model = SGLangChat("http://h:1")
    request = _request(ModelSettings(extra={"stop": ["</s>"]}))
    body = model.session(routing_key="k")._body(request, False)
    first, second = model.share_sampling(body), model.share_sampling(dict(body))
    assert first == second and first is not second
    assert type(first) is dict and type(second) is dict  # each call's own, as before


def _reply(finish: str, name: str) -> dict[str, Any]:
    call = {"id": "c", "function": {"name": name, "arguments": "{}"}}
    return {"choices": [{"message": {"tool_calls": [call]}, "finish_reason": finish}]}


def test_finish_reasons_and_tool_names_are_one_string_each() -> None:
    import json

    one, two = (
        validate_chat_reply(json.loads(json.dumps(_reply("tool_calls", "search")))) for _ in "ab"
    )
    assert one.finish == two.finish and one.finish is two.finish
    (a,), _ = tool_calls_from_wire(one.message["tool_calls"])
    (b,), _ = tool_calls_from_wire(two.message["tool_calls"])
    assert a.name is b.name
