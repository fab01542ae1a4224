"""The parsers build ``Parsed`` and ``ParsedToolCall`` without validating them again
(``built_parsed``, ``built_call``): what they build must be the very instance validation makes."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest

from agentkit.dialects.glm45 import Parsed, ParsedToolCall, Problem
from agentkit.dialects.glm45.results import built_call, built_parsed

CALL_FIELDS: dict[str, Any] = {
    "index": 1,
    "name": "search",
    "arguments": {"query": "北京", "limit": 3, "filters": {"a": [1, None]}},
    "raw": "<tool_call>search\n...</tool_call>",
}


def test_built_call_equals_the_validated_call() -> None:
    built = built_call(**CALL_FIELDS)
    validated = ParsedToolCall(**CALL_FIELDS)
    assert type(built) is ParsedToolCall
    assert built == validated
    assert built.model_dump() == validated.model_dump()
    assert built.model_dump_json() == validated.model_dump_json()
    assert built.model_fields_set == validated.model_fields_set
    assert repr(built) == repr(validated)
    assert built.arguments_json() == validated.arguments_json()


@pytest.mark.parametrize("reasoning", [None, "thought"])
@pytest.mark.parametrize("stop", [None, "<|user|>"])
def test_built_parsed_equals_the_validated_parsed(reasoning: str | None, stop: str | None) -> None:
    problem = Problem(kind="unknown_tool", message="call to unknown tool 'x'", call_index=0)
    fields: dict[str, Any] = {
        "reasoning": reasoning,
        "content": "answer",
        "tool_calls": [built_call(**CALL_FIELDS)],
        "problems": [problem],
        "stop": stop,
    }
    built = built_parsed(**fields)
    validated = Parsed(**fields)
    assert type(built) is Parsed
    assert built == validated
    assert built.model_dump() == validated.model_dump()
    assert built.model_dump_json() == validated.model_dump_json()
    assert built.model_fields_set == validated.model_fields_set
    assert repr(built) == repr(validated)
    assert Parsed.model_validate_json(built.model_dump_json()) == built
    assert pickle.loads(pickle.dumps(built)) == validated
    assert copy.deepcopy(built) == validated


def test_built_models_stay_frozen_and_copy_like_validated_ones() -> None:
    built = built_parsed("r", "c", [], [], None)
    with pytest.raises(ValueError, match="frozen"):
        built.content = "changed"  # type: ignore[misc]
    copied = built.model_copy(update={"content": "other"})
    assert copied.content == "other"
    assert built.content == "c"
    assert copied.model_fields_set == set(Parsed.model_fields)
