"""Token mode's unvalidated constructions (``messages.assemble``: the reply, its message and
tool calls, its token output, the appended segments, the call input) must build what validation
builds: the same ``model_dump``, ``model_fields_set``, JSON and ``__dict__`` (field order
included). Each case is built twice, once as it is and once with ``assemble`` replaced by
validated construction of the fields it gives, or compared with validated construction."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from pydantic import BaseModel

from agentkit.dialects import glm45
from agentkit.messages import AssistantMessage, ToolCall, UserMessage, assembled_assistant
from agentkit.models import sglang_tokens as tokens_module
from agentkit.models.base import ModelRequest
from agentkit.models.recording import CallInput, CallUsage, ModelReply, TokenOutput
from agentkit.models.replay_wire import ReplayRequest
from agentkit.models.sglang_tokens import SGLangTokens, TokenSession
from agentkit.testing import load_test_tokenizer
from agentkit.trajectory.records import Attempt, TokenSegment, TokenSource
from tests.trusted_support import assert_same

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {"type": "object", "properties": {"key": {"type": "string"}}},
        },
    }
]
CALL = "<think>r</think>\n<tool_call>lookup\n<arg_key>key</arg_key>\n<arg_value>k1</arg_value>\n</tool_call>"
MALFORMED = "<think>r</think>\n<tool_call>lookup\n<arg_key>key</arg_key>\n</tool_call>"
ANSWER = "<think>done</think>\nAll done."
REPLY_FIELDS = {
    "message",
    "server",
    "output_text",
    "finish_reason",
    "loop_finish_reason",
    "matched_stop",
    "usage",
    "engine_meta",
    "tokens",
    "problems",
    "malformed_calls",
}


def validating(monkeypatch: pytest.MonkeyPatch) -> None:
    """Token mode's fast constructions (``messages.assemble``) replaced by validated ones of
    the fields they give."""

    def validated(cls: type[BaseModel], data: dict[str, Any], given: set[str]) -> BaseModel:
        return cls(**{name: data[name] for name in given})

    monkeypatch.setattr(tokens_module, "assemble", validated)
    monkeypatch.setattr(
        tokens_module,
        "assembled_assistant",
        lambda content, reasoning, calls: AssistantMessage(
            content=content, reasoning_content=reasoning, tool_calls=calls
        ),
    )


def session() -> TokenSession:
    model = SGLangTokens("http://127.0.0.1:9", load_test_tokenizer())
    return model.session(routing_key="k")


def reply_data(text: str, matched: Any, *, logprobs: bool) -> dict[str, Any]:
    tokenizer = load_test_tokenizer()
    ids = [*tokenizer.encode(text), 151338]
    meta: dict[str, Any] = {
        "id": "r",
        "finish_reason": {"type": "stop", "matched": matched},
        "prompt_tokens": 12,
        "completion_tokens": len(ids),
        "cached_tokens": 3,
        "weight_version": "w1",
        "e2e_latency": 0.5,
    }
    if logprobs:
        meta["output_token_logprobs"] = [[-0.5, i, None] for i in ids]
    return {"text": text, "output_ids": ids, "meta_info": meta}


def build_reply(text: str, matched: Any, logprobs: bool) -> ModelReply:
    tokens = session()
    tokens.model.return_logprob = logprobs
    request = ModelRequest(messages=[UserMessage(content="hi")], tools=TOOLS)
    data = reply_data(text, matched, logprobs=logprobs)
    return tokens._reply(request, data, "http://h:1", [1, 2, 3], ReplayRequest())


@pytest.mark.parametrize("text", [CALL, MALFORMED, ANSWER], ids=["call", "malformed", "answer"])
@pytest.mark.parametrize("matched", [151338, "<|observation|>", None, 151338.0])
@pytest.mark.parametrize("logprobs", [True, False])
def test_a_reply_is_the_validated_one(
    monkeypatch: pytest.MonkeyPatch, text: str, matched: Any, logprobs: bool
) -> None:
    # the call ids come from a counter: the same count for both builds
    monkeypatch.setattr(tokens_module, "_CALL_COUNTER", itertools.count())
    fast = build_reply(text, matched, logprobs)
    validating(monkeypatch)
    monkeypatch.setattr(tokens_module, "_CALL_COUNTER", itertools.count())
    validated = build_reply(text, matched, logprobs)
    # the message is validated either way; a malformed call's id is random (calls_from_parsed)
    assert fast.message.model_dump(exclude={"tool_calls"}) == validated.message.model_dump(
        exclude={"tool_calls"}
    )
    validated.__dict__["message"] = fast.message
    assert_same(fast, validated)
    # the fields given are those the validated construction always gave
    assert fast.model_fields_set == REPLY_FIELDS
    assert fast.tokens is not None and validated.tokens is not None
    assert_same(fast.tokens, validated.tokens)
    assert fast.tokens.output_ids == validated.tokens.output_ids
    if logprobs:
        assert fast.tokens.output_logprobs and all(
            type(x) is float for x in fast.tokens.output_logprobs
        )


def test_a_float_matched_stop_is_still_coerced() -> None:
    # 151338.0 from a server: validation turns it into the int, as before
    reply = build_reply(CALL, 151338.0, True)
    assert reply.matched_stop == 151338 and type(reply.matched_stop) is int


@pytest.mark.parametrize(
    "source", [TokenSource.PROMPT, TokenSource.TOOL, TokenSource.USER, TokenSource.TEMPLATE]
)
def test_a_segment_is_the_validated_one(monkeypatch: pytest.MonkeyPatch, source: Any) -> None:
    text = (
        glm45.generation_prompt(True)
        if source is TokenSource.TEMPLATE
        else "<|observation|>\n<tool_response>\nvalue of k1 (#17), é\n</tool_response>"
    )
    fast = session()._encode(text, source)
    validated = TokenSegment(source=source, ids=load_test_tokenizer().encode(text))
    assert_same(fast, validated)
    assert fast.ids is not session()._encode(text, source).ids  # each segment its own list


def test_a_segment_of_another_tokenizer_is_validated() -> None:
    class Loose:
        """A tokenizer whose ids are not plain ints (validation makes them ints)."""

        vocab_size = 10

        def encode(self, text: str) -> list[int]:
            return [True, 2]

        def decode(self, ids: Any) -> str:
            return ""

        def token_to_id(self, token: str) -> int | None:
            return None

    model = SGLangTokens("http://127.0.0.1:9", Loose())
    segment = model.session()._encode("x", TokenSource.TOOL)
    assert isinstance(segment, TokenSegment)
    assert segment.ids == [1, 2] and type(segment.ids[0]) is int


@pytest.mark.anyio
async def test_the_call_input_is_the_validated_one(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[CallInput] = []

    async def capture(request: Any, call_input: CallInput, call: Any) -> Any:
        sent.append(call_input)
        raise RuntimeError("stop here")

    monkeypatch.setattr(tokens_module, "recorded_call", capture)
    request = ModelRequest(messages=[UserMessage(content="hi")], tools=TOOLS)
    for _ in range(2):
        model = SGLangTokens(["http://127.0.0.1:9", "http://127.0.0.1:10"], load_test_tokenizer())
        with pytest.raises(RuntimeError, match="stop here"):
            await model.session(routing_key="k").generate(request)
        validating(monkeypatch)
    fast, validated = sent
    assert_same(fast, validated)
    assert fast.model_fields_set == {"mode", "sampling_params", "input_ids", "appended"}
    assert fast.appended and fast.input_ids == [i for s in fast.appended for i in s.ids]
    for segment_fast, segment_validated in zip(fast.appended, validated.appended, strict=True):
        assert_same(segment_fast, segment_validated)


def test_the_assembled_models_are_the_validated_ones() -> None:
    # the fast builders (messages.assemble) against validated construction with the same
    # fields given; a field added to a model, a wrong default or fields set fails here
    arguments = {"key": "k1", "n": 2}
    call = tokens_module._tool_call("call_1", "lookup", arguments)
    assert_same(call, ToolCall(id="call_1", name="lookup", arguments=arguments))
    assert call.arguments is arguments  # the call's own dict, not copied again
    for reasoning in ("r", None):
        for calls in ([call], []):
            assert_same(
                assembled_assistant("c", reasoning, calls),
                AssistantMessage(content="c", reasoning_content=reasoning, tool_calls=calls),
            )
    for source in TokenSource:
        assert_same(tokens_module._segment(source, [1, 2]), TokenSegment(source=source, ids=[1, 2]))
    for logprobs in ([-0.5, -1.0], None):
        fields: dict[str, Any] = {
            "output_ids": [5, 6],
            "output_logprobs": logprobs,
            "routed_experts": None,
            "sampling_mask": None,
        }
        assert_same(tokens_module._token_output([5, 6], logprobs), TokenOutput(**fields))


def test_assembled_models_do_not_share_what_an_assignment_changes() -> None:
    # a shared fields set must not take the name assigned on one model into another's
    first = assembled_assistant("a", None, [])
    second = assembled_assistant("b", None, [])
    first.content = "changed"
    first.role = "assistant"  # a field not given: its name joins first's fields set only
    assert "role" in first.model_fields_set
    assert second.model_fields_set == {"content", "reasoning_content", "tool_calls"}
    one, two = (
        tokens_module._segment(TokenSource.TOOL, [1]),
        tokens_module._segment(TokenSource.TOOL, [2]),
    )
    assert one.model_fields_set is not two.model_fields_set
    out = tokens_module._token_output([1], None)
    assert out.model_fields_set is not tokens_module._token_output([1], None).model_fields_set


@pytest.mark.parametrize("text", [CALL, ANSWER], ids=["call", "answer"])
def test_a_reply_message_is_the_validated_one(text: str) -> None:
    reply = build_reply(text, 151338, True)
    message = reply.message
    validated = AssistantMessage(
        content=message.content,
        reasoning_content=message.reasoning_content,
        tool_calls=[
            ToolCall(id=c.id, name=c.name, arguments=c.arguments) for c in message.tool_calls
        ],
    )
    assert_same(message, validated)
    for fast, slow in zip(message.tool_calls, validated.tool_calls, strict=True):
        assert_same(fast, slow)
    assert [c.name for c in message.tool_calls] == (["lookup"] if text == CALL else [])


@pytest.mark.parametrize("matched", [151338, 151338.0])
def test_a_reply_with_its_attempts_is_the_one_assigned_them(matched: Any) -> None:
    # the attempts are given to the reply as it is built; before, they were assigned after
    attempts = [Attempt(number=1, server="http://h:1", started_at=1.0, elapsed_s=0.5, ok=True)]
    tokens = session()
    request = ModelRequest(messages=[UserMessage(content="hi")], tools=TOOLS)
    data = reply_data(CALL, matched, logprobs=True)
    fast = tokens._reply(request, data, "http://h:1", [1, 2, 3], ReplayRequest(), attempts)
    assert fast.attempts is attempts
    given = {name: getattr(fast, name) for name in REPLY_FIELDS}
    validated = ModelReply(**given)
    validated.attempts = attempts
    assert_same(fast, validated)
    assert fast.model_fields_set == REPLY_FIELDS | {"attempts"}
    without = tokens._reply(request, data, "http://h:1", [1, 2, 3], ReplayRequest())
    assert without.attempts == [] and without.model_fields_set == REPLY_FIELDS


def test_sampling_params_are_a_new_dict_equal_to_a_fresh_build() -> None:
    from agentkit.models.base import ModelSettings

    model = SGLangTokens("http://127.0.0.1:9", load_test_tokenizer())
    first = model.sampling_params(model.settings)
    second = model.sampling_params(model.settings)
    assert first == second and first is not second  # each record owns its dict
    second["max_new_tokens"] = 1  # a record's dict changed: the next call's is not
    assert model.sampling_params(model.settings)["max_new_tokens"] == 4096
    hot = ModelSettings(temperature=0.5, seed=3)
    assert model.sampling_params(hot) == {
        "max_new_tokens": 4096,
        "stop_token_ids": model.stop_token_ids,
        "skip_special_tokens": False,
        "no_stop_trim": True,
        "temperature": 0.5,
        "sampling_seed": 3,
    }
    model.stop_token_ids = [7]  # new stop ids: built again
    assert model.sampling_params(hot)["stop_token_ids"] == [7]
    extra = ModelSettings(extra={"min_p": 0.1})
    assert model.sampling_params(extra)["min_p"] == 0.1
    extra.extra["min_p"] = 0.2  # extra settings changed in place: still read
    assert model.sampling_params(extra)["min_p"] == 0.2


@pytest.mark.parametrize(
    "meta",
    [
        {},
        {"prompt_tokens": 12, "completion_tokens": 30, "cached_tokens": 3, "weight_version": "w"},
        {"completion_tokens": 30, "spec_verify_ct": 15},
        {"completion_tokens": 30, "spec_verify_ct": 0, "cached_tokens": None},
        {"prompt_tokens": True, "completion_tokens": 30},  # a bool: validation decides
        {"prompt_tokens": 12.0, "cached_tokens": 2.0},  # floats: coerced by validation
        {"weight_version": 3},  # refused by validation
        {"completion_tokens": 30, "spec_verify_ct": True},
    ],
)
def test_the_usage_is_the_validated_one(meta: dict[str, Any]) -> None:
    def build() -> Any:
        return tokens_module._usage(meta, 7, 30)

    def validated() -> Any:
        spec = meta.get("spec_verify_ct")
        completion = meta.get("completion_tokens", 30)
        speculative = isinstance(spec, int) and spec > 0
        return CallUsage(
            weight_version=meta.get("weight_version"),
            prompt_tokens=meta.get("prompt_tokens", 7),
            completion_tokens=completion,
            cached_tokens=meta.get("cached_tokens"),
            spec_verify_ct=spec if speculative else None,
            accept_length=completion / spec if speculative else None,
        )

    try:
        expected = validated()
    except ValueError as exc:
        with pytest.raises(type(exc)):
            build()
        return
    assert_same(build(), expected)
