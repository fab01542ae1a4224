"""The step path's unvalidated constructions build what validation builds.

Per step: ``ok_outcome`` (a tool call's success), ``tool_result`` (the message the model sees)
and ``tool_step`` (the step record); per run: the first messages (``system_message``,
``user_message``), the trajectory and usage, their copies (``usage_copy``) and the episode end.
Values of exactly their field types are stored as they are; each must give the same
``model_dump``, ``model_fields_set``, JSON and ``__dict__`` (field order and value types
included) as validated construction, and anything else must go through validation.
"""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field, field_validator

from agentkit import Agent, EpisodeStatus, tool
from agentkit.conversation import usage_copy
from agentkit.messages import (
    AssistantMessage,
    SharedFieldsSet,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UserMessage,
    system_message,
    tool_result,
    user_message,
)
from agentkit.models.base import ModelRequest, ModelResponse
from agentkit.step_records import _tool_step_template, tool_step
from agentkit.tool import ToolOutcome, ToolStatus, ok_outcome
from agentkit.trajectory.records import EnvStepRecord, ModelCallRecord, Trajectory, Usage
from tests.trusted_support import assert_same


class Text(str):
    """A str subclass: validation stores a plain str instead."""


@pytest.mark.parametrize(
    "args",
    [
        ("value of k", 10, False, 0.25),
        ("cut", 16_000, True, 1e-6),
        (Text("a str subclass"), 14, False, 0.0),  # validated: stored as a plain str
        ("int time", 8, False, 0),  # an int elapsed time: validated to a float
        ("int flag", 8, 0, 0.5),  # an int flag: validated to a bool
    ],
)
def test_ok_outcome_is_the_validated_one(args: tuple[Any, Any, Any, Any]) -> None:
    output, raw_chars, truncated, elapsed_s = args
    fast = ok_outcome(output, raw_chars, truncated, elapsed_s)
    validated = ToolOutcome(
        status=ToolStatus.OK,
        output=output,
        raw_chars=raw_chars,
        truncated=truncated,
        elapsed_s=elapsed_s,
    )
    assert_same(fast, validated)
    assert fast.ok
    assert type(fast.output) is str


def test_ok_outcomes_have_their_own_fields_sets() -> None:
    first, second = ok_outcome("a", 1, False, 0.1), ok_outcome("b", 1, False, 0.1)
    assert first.__pydantic_fields_set__ is not second.__pydantic_fields_set__
    copied = first.model_copy(update={"error": "changed"})
    assert "error" in copied.model_fields_set
    assert "error" not in first.model_fields_set and "error" not in second.model_fields_set


@pytest.mark.parametrize(
    "args",
    [
        ("call_1", "lookup", "value of k", False),
        ("", "", "Error: your tool call could not be parsed", True),
        (Text("call_2"), "lookup", Text("subclassed"), False),  # validated
        ("call_3", "lookup", "an int flag", 1),  # validated: stored as True
    ],
)
def test_tool_result_is_the_validated_message(args: tuple[Any, Any, Any, Any]) -> None:
    call_id, name, content, is_error = args
    fast = tool_result(call_id, name, content, is_error)
    validated = ToolMessage(tool_call_id=call_id, name=name, content=content, is_error=is_error)
    assert_same(fast, validated)
    assert type(fast.__pydantic_fields_set__) is SharedFieldsSet
    assert fast.to_openai() == validated.to_openai()


def test_a_tool_result_assigned_to_gets_its_own_fields_set() -> None:
    first, second = tool_result("a", "t", "x", False), tool_result("b", "t", "y", False)
    assert first.__pydantic_fields_set__ is second.__pydantic_fields_set__
    first.role = "tool"
    assert first.__pydantic_fields_set__ is not second.__pydantic_fields_set__
    assert "role" in first.model_fields_set and "role" not in second.model_fields_set


CALL = ToolCall(id="call_1", name="lookup", arguments={"key": "k"}, raw_arguments='{"key": "k"}')
EDITED = ToolCall(id="call_1", name="lookup", arguments={"key": "other"})
BAD = ToolCall(id="call_2", name="lookup", raw_arguments="{not json", parse_error="bad JSON")
PLACEHOLDER = ToolCall(id="", name="", arguments={})
FAILED = ToolOutcome(
    status=ToolStatus.ERROR,
    output="Error: ValueError: no k",
    error="ValueError: no k",
    error_type="ValueError",
    raw_chars=16,
    elapsed_s=0.5,
)


@pytest.mark.parametrize(
    ("call", "outcome", "ran"),
    [
        (CALL, ok_outcome("value of k", 10, False, 0.01), None),
        (CALL, ok_outcome("value of other", 14, False, 0.01), EDITED),
        (CALL, FAILED, None),
        (BAD, ToolOutcome(status=ToolStatus.INVALID_ARGUMENTS, output="Error: bad"), None),
        (PLACEHOLDER, ToolOutcome(status=ToolStatus.INVALID_ARGUMENTS, output="Error"), None),
        # built without validation by someone else (a hook): validated here
        (CALL, ToolOutcome.model_construct(status=ToolStatus.OK, output="x", elapsed_s=1), None),
        (CALL, ToolOutcome.model_construct(status=ToolStatus.OK, output=Text("x")), None),
    ],
)
def test_tool_step_is_the_validated_record(
    call: ToolCall, outcome: ToolOutcome, ran: ToolCall | None
) -> None:
    fast = tool_step("ep_1", 3, 2, call, outcome, 1234.5, ran)
    validated = EnvStepRecord(
        episode_id="ep_1",
        index=3,
        turn=2,
        step_type="tool",
        call=(ran or call) if call.name or call.parse_error else None,
        status=outcome.status.value,
        error=outcome.error,
        error_type=outcome.error_type,
        raw_output_chars=outcome.raw_chars,
        output=outcome.output,
        truncated=outcome.truncated,
        latency_s=outcome.elapsed_s,
        started_at=1234.5,
    )
    assert_same(fast, validated)
    assert fast.call is validated.call  # the call itself, as validation keeps it
    assert type(fast.__pydantic_fields_set__) is SharedFieldsSet


def test_a_tool_step_without_a_start_time_gets_the_clock() -> None:
    record = tool_step("ep_1", 0, 0, CALL, ok_outcome("v", 1, False, 0.1), 0.0)
    assert record.started_at > 0 and type(record.started_at) is float


def test_a_tool_step_assigned_to_gets_its_own_fields_set() -> None:
    outcome = ok_outcome("v", 1, False, 0.1)
    first, second = (
        tool_step("e", 0, 0, CALL, outcome, 1.0),
        tool_step("e", 1, 0, CALL, outcome, 1.0),
    )
    first.sandbox = "box"
    assert "sandbox" in first.model_fields_set and "sandbox" not in second.model_fields_set


class _WithFactory(EnvStepRecord):
    notes: list[str] = Field(default_factory=list)


class _WithMutableDefault(EnvStepRecord):
    tags: dict[str, str] = {}  # noqa: RUF012 - the case the template refuses


class _WithValidator(EnvStepRecord):
    @field_validator("output")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()


class _WithConstraint(EnvStepRecord):
    latency_s: Annotated[float, Field(ge=0)] = 0.0


class _WithRequired(EnvStepRecord):
    owner: str


@pytest.mark.parametrize(
    "cls", [_WithFactory, _WithMutableDefault, _WithValidator, _WithConstraint, _WithRequired]
)
def test_a_record_type_the_template_cannot_fill_is_always_validated(
    cls: type[EnvStepRecord],
) -> None:
    assert _tool_step_template(cls) is None
    assert _tool_step_template(EnvStepRecord) is not None


# --- once per run: the conversation's first messages, trajectory, usage and end ---------------


@pytest.mark.parametrize("content", ["You look things up.", Text("subclassed")])
def test_system_and_user_messages_are_the_validated_ones(content: str) -> None:
    for fast, validated in (
        (system_message(content), SystemMessage(content=content)),
        (user_message(content), UserMessage(content=content)),
    ):
        assert_same(fast, validated)
        assert type(fast.__pydantic_fields_set__) is SharedFieldsSet
        assert fast.to_openai() == validated.to_openai()


def test_a_user_message_assigned_to_gets_its_own_fields_set() -> None:
    first, second = user_message("a"), user_message("b")
    first.role = "user"
    assert "role" in first.model_fields_set and "role" not in second.model_fields_set


def test_usage_copy_is_model_copy_and_independent() -> None:
    usage = Usage()
    usage.add_tool_calls(2)
    usage.cost = 0.5
    copied = usage_copy(usage)
    assert_same(copied, usage.model_copy())
    copied.add_tool_calls(1)
    copied.requests = 1
    assert usage.tool_calls == 2 and copied.tool_calls == 3 and usage.requests == 0
    assert usage.model_fields_set == {"tool_calls", "cost"}
    assert copied.model_fields_set == {"tool_calls", "cost", "requests"}
    assert_same(usage_copy(Usage()), Usage().model_copy())


class _Scripted:
    """A model whose session answers each turn from a script (no server)."""

    name, mode = "scripted", "chat"

    def __init__(self, replies: list[AssistantMessage]) -> None:
        self.replies = replies

    def session(self, *, routing_key: str | None = None) -> _Scripted:
        return self

    async def generate(self, request: ModelRequest, *, on_delta: Any = None) -> ModelResponse:
        message = self.replies[request.turn]
        finish = "tool_calls" if message.tool_calls else "stop"
        record = ModelCallRecord(
            episode_id=request.episode_id,
            index=request.call_index,
            turn=request.turn,
            mode="chat",
            finish_reason=finish,
            content=message.content,
            tool_calls=list(message.tool_calls),
        )
        return ModelResponse(message=message, finish_reason=finish, record=record)

    async def aclose(self) -> None:
        return None


def _scripted_agent() -> Agent[None, str]:
    @tool(inline=True)
    def lookup(key: str) -> str:
        """Look a key up.

        Args:
            key: the key
        """
        return f"value of {key}"

    replies = [
        AssistantMessage(content="", tool_calls=[ToolCall(name="lookup", arguments={"key": "k"})]),
        AssistantMessage(content="done"),
    ]
    return Agent(model=_Scripted(replies), instructions="Look things up.", tools=[lookup])


def _rebuilt(obj: BaseModel) -> BaseModel:
    """What validation builds from ``obj``'s given fields (a default factory's own value kept)."""
    given = {name: getattr(obj, name) for name in obj.model_fields_set}
    rebuilt = type(obj)(**given)
    for name, info in type(obj).model_fields.items():
        if name not in given and info.default_factory is not None:
            assert type(rebuilt.__dict__[name]) is type(obj.__dict__[name]), name
            rebuilt.__dict__[name] = obj.__dict__[name]  # a clock, or a fresh container
    return rebuilt


@pytest.mark.anyio
async def test_a_runs_trajectory_usage_messages_and_end_are_the_validated_ones() -> None:
    async with _scripted_agent() as agent:
        result = await agent.run("go")
    assert result.ok and result.output == "done"
    trajectory = result.trajectory
    end = trajectory.end
    assert end is not None and end.status is EpisodeStatus.COMPLETED
    assert_same(end, _rebuilt(end))
    assert end.usage is not result.usage and end.usage == result.usage
    assert_same(result.usage, _rebuilt(result.usage))
    rebuilt = Trajectory(
        start=trajectory.start, calls=trajectory.calls, steps=trajectory.steps, end=end
    )
    assert trajectory.model_dump_json() == rebuilt.model_dump_json()
    assert trajectory.start is rebuilt.start
    validated = Trajectory(start=trajectory.start)
    validated.end = end
    assert trajectory.model_fields_set == validated.model_fields_set == {"start", "end"}
    assert list(trajectory.__dict__) == list(validated.__dict__)
    for message in result.messages:
        assert_same(message, _rebuilt(message))
    assert end.messages == [m.to_openai() for m in result.messages]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "rewards",
    [
        {"reward": 1},
        {"reward_components": {"accuracy": 1}},
        {"turn_rewards": {0: 1}},
        {"tool_rewards": {"call_1": 1}},
    ],
)
async def test_an_end_with_rewards_is_validated(rewards: dict[str, Any]) -> None:
    async with _scripted_agent() as agent:
        conv = agent.conversation()
        await conv.send("go")
        end = await conv.finish(**rewards)
    assert_same(end, _rebuilt(end))
    for name, given in rewards.items():
        value = getattr(end, name)
        assert value == given
        if isinstance(given, dict):
            assert value is not given  # validation copies the caller's dictionary
            assert all(type(v) is float for v in value.values() if name != "reward_components")
        else:
            assert type(value) is float  # validated: the int became a float
