"""A run's episode start (``Agent.conversation``) is built without validation when its values
are of exactly their field types, and is then what validation builds: the same dump, JSON,
fields set and field order, the tool schemas and metadata copied as validation copies them.
Anything else (a str subclass, a bool index, metadata given) goes through validation."""

from __future__ import annotations

from typing import Any

import pytest

from agentkit import Agent, tool
from agentkit.agent import _episode_start
from agentkit.messages import AssistantMessage
from agentkit.models.base import ModelRequest, ModelResponse
from agentkit.trajectory.records import EpisodeStart, ModelCallRecord
from tests.trusted_support import assert_same


class Text(str):
    """A str subclass: validation stores a plain str instead."""


class _Done:
    """A model that answers every turn with the final text (no server)."""

    name, mode = "scripted", "chat"

    def session(self, *, routing_key: str | None = None) -> _Done:
        return self

    async def generate(self, request: ModelRequest, *, on_delta: Any = None) -> ModelResponse:
        record = ModelCallRecord(
            episode_id=request.episode_id,
            index=request.call_index,
            turn=request.turn,
            mode="chat",
            finish_reason="stop",
            content="done",
        )
        return ModelResponse(
            message=AssistantMessage(content="done"), finish_reason="stop", record=record
        )

    async def aclose(self) -> None:
        return None


def _agent(instructions: str | None = "Look things up.") -> Agent[None, str]:
    @tool
    def lookup(key: str) -> str:
        """Look a key up."""
        return key

    return Agent(model=_Done(), instructions=instructions, tools=[lookup])


def _validated(start: EpisodeStart, given: dict[str, Any]) -> EpisodeStart:
    """What ``EpisodeStart(**given)`` builds, with ``start``'s clock (a default factory)."""
    validated = EpisodeStart(**given)
    validated.__dict__["started_at"] = start.started_at
    return validated


def _given(agent: Agent[None, str], **values: Any) -> dict[str, Any]:
    """The values ``Agent.conversation`` passes for an episode (before any copy)."""
    given: dict[str, Any] = {
        "episode_id": "ep_1",
        "task_id": None,
        "group_id": None,
        "sample_index": None,
        "mode": "chat",
        "token_exact": False,
        "model": agent.model.name,
        "instructions": agent.system_prompt,
        "tools": agent.tool_schemas,
        "thinking": True,
        "metadata": {},
        "label": None,
    }
    given.update(values)
    return given


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"task_id": "t", "group_id": "g", "sample_index": 3, "label": {"answer": 42}},
        {"instructions": None, "thinking": False, "mode": "tokens", "token_exact": True},
        {"tools": []},
        # validated: each a value validation changes or must check
        {"episode_id": Text("ep_sub")},
        {"sample_index": True},
        {"metadata": {"k": "v"}},
        {"tools": [{1: "not a str key"}]},
    ],
)
def test_episode_start_is_the_validated_one(values: dict[str, Any]) -> None:
    agent = _agent()
    given = _given(agent, **values)
    schemas = given["tools"]
    metadata = given["metadata"]
    try:
        expected = EpisodeStart(**given)
    except Exception as exc:
        with pytest.raises(type(exc)):
            _episode_start(dict(given))
        return
    start = _episode_start(dict(given))
    assert_same(start, _validated(start, given))
    assert expected.model_dump(exclude={"started_at"}) == start.model_dump(exclude={"started_at"})
    # containers of its own, as validation gives: a new list of new dicts, values shared
    assert start.tools is not schemas and start.metadata is not metadata
    for own, schema in zip(start.tools, schemas, strict=True):
        assert own is not schema and own == schema
        for key, value in schema.items():
            assert own[key] is value
    start.tools.append({"changed": True})
    start.metadata["changed"] = True
    assert agent.tool_schemas == _agent().tool_schemas and metadata == given["metadata"]


def test_a_bad_value_still_fails_validation() -> None:
    with pytest.raises(ValueError):
        _episode_start(_given(_agent(), thinking="maybe"))


@pytest.mark.anyio
async def test_a_runs_episode_start_is_the_validated_one() -> None:
    async with _agent() as agent:
        conv = agent.conversation(task_id="t", sample_index=0, label="x")
        result = await conv.send("go")
    start = conv.trajectory.start
    assert result.ok and start.task_id == "t" and start.label == "x"
    given = {name: getattr(start, name) for name in start.model_fields_set}
    assert "prompt_messages" in given  # set by the first send, as before
    assert_same(start, _validated(start, given))
    assert start.tools == agent.tool_schemas and start.tools is not agent.tool_schemas
