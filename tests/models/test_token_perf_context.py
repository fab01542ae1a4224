"""Token mode's fast paths keep the wire and the records exact.

The session encodes the generation prompt once per model, compiles the tool schemas once per
tool list and builds its own ids and segments without re-validating them; these tests check
that every call still sends exactly the previous ids + output + appended segments, that no two
records share a mutable id list, that what was built without validation validates to itself,
and that the reply check still refuses ids that are not plain ints.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from agentkit import Agent, tool
from agentkit.dialects import glm45
from agentkit.models.failures import ProtocolError
from agentkit.models.generate_wire import validate_generate_reply
from agentkit.models.sglang_tokens import SGLangTokens
from agentkit.testing import PolicyRequest, SGLangTestServer, load_test_tokenizer
from agentkit.trajectory.recorder import MemoryRecorder
from agentkit.trajectory.records import ModelCallRecord, TokenSource

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
    return f"value of {key}"


async def run_episodes(
    count: int, model_out: list[SGLangTokens] | None = None
) -> list[list[ModelCallRecord]]:
    recorder = MemoryRecorder()
    async with SGLangTestServer(policy=policy) as server:
        model = SGLangTokens(server.base_url, load_test_tokenizer())
        if model_out is not None:
            model_out.append(model)
        agent: Agent[Any, Any] = Agent(
            model=model, tools=[lookup], instructions="Look keys up.", recorder=recorder
        )
        try:
            for _ in range(count):
                result = await agent.run("Look up three keys.")
                assert result.output == "All done."
        finally:
            await agent.aclose()
    calls = [item for item in recorder.items if isinstance(item, ModelCallRecord)]
    episodes: dict[str, list[ModelCallRecord]] = {}
    for call in calls:
        episodes.setdefault(call.episode_id, []).append(call)
    return list(episodes.values())


async def test_each_call_sends_the_previous_context_its_output_and_the_appended_segments() -> None:
    episodes = await run_episodes(2)
    assert len(episodes) == 2
    for calls in episodes:
        assert len(calls) == TOOL_CALLS + 1
        for previous, call in itertools.pairwise(calls):
            assert previous.input_ids is not None and previous.output_ids is not None
            appended = [i for segment in call.appended for i in segment.ids]
            assert call.input_ids == previous.input_ids + previous.output_ids + appended
        first = calls[0]
        assert first.input_ids == [i for segment in first.appended for i in segment.ids]


async def test_the_cached_generation_prompt_is_the_tokenizers_own_and_never_shared() -> None:
    episodes = await run_episodes(2)
    prompt = glm45.render_continuation(
        [], after_stop=None, enable_thinking=True, add_generation_prompt=True
    )
    expected = load_test_tokenizer().encode(prompt)
    templates = [
        segment
        for calls in episodes
        for call in calls[1:]
        for segment in call.appended
        if segment.source is TokenSource.TEMPLATE
    ]
    assert len(templates) == 2 * TOOL_CALLS
    assert all(segment.ids == expected for segment in templates)
    # every record owns its lists: the cache hands out copies
    assert len({id(segment.ids) for segment in templates}) == len(templates)
    templates[0].ids.append(0)
    assert templates[1].ids == expected


async def test_records_built_without_revalidation_validate_to_themselves() -> None:
    for calls in await run_episodes(1):
        for call in calls:
            dumped = call.model_dump(mode="json")
            assert ModelCallRecord.model_validate(dumped).model_dump(mode="json") == dumped
            assert all(type(i) is int for i in call.input_ids or [])
            assert call.tool_calls or call.content == "All done."


def test_tool_schemas_are_compiled_once_per_tool_list() -> None:
    model = SGLangTokens("http://127.0.0.1:1", load_test_tokenizer())
    tools = [lookup.schema()]
    first = model.tool_schemas(tools)
    assert first is not None and first is model.tool_schemas(tools)
    other = [lookup.schema()]
    assert model.tool_schemas(other) is not first, "an equal but different list compiles anew"
    tools.append(lookup.schema())
    grown = model.tool_schemas(tools)
    assert grown is not first, "a list that grew compiles anew"
    tools[0] = {"type": "function", "function": {"name": "other", "parameters": {}}}
    replaced = model.tool_schemas(tools)
    assert replaced is not grown, "a tool replaced in place compiles anew"
    assert model.tool_schemas([]) is None and model.tool_schemas(None) is None


def test_template_ids_are_copies_of_one_encoding() -> None:
    model = SGLangTokens("http://127.0.0.1:1", load_test_tokenizer())
    first = model.template_ids("<|assistant|>")
    first.append(7)
    assert model.template_ids("<|assistant|>") == load_test_tokenizer().encode("<|assistant|>")


@pytest.mark.parametrize("bad", [[1, True], [1, 2.0], ["3"], [None], 5])
def test_the_reply_check_still_refuses_ids_that_are_not_plain_ints(bad: Any) -> None:
    reply = {"text": "x", "output_ids": bad, "meta_info": {"finish_reason": {"type": "stop"}}}
    with pytest.raises(ProtocolError, match="output_ids"):
        validate_generate_reply(reply, logprobs=False)


def test_the_reply_check_takes_plain_and_empty_id_lists() -> None:
    for ids in ([], [1, 2, 151338]):
        reply = {"text": "", "output_ids": ids, "meta_info": {"finish_reason": {"type": "stop"}}}
        assert validate_generate_reply(reply, logprobs=False)["output_ids"] == ids


async def test_only_prompt_stretches_are_kept_not_tool_results() -> None:
    models: list[SGLangTokens] = []
    await run_episodes(2, models)
    kept = models[0].encoder()._cache
    assert any("Look keys up." in piece for piece in kept), "the system prompt is kept"
    assert not any("value of" in piece for piece in kept), "a tool's result is not"
