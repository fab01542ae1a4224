"""Conversation items: system, user, assistant (with reasoning and tool calls) and tool results.

The models are pydantic at the boundary and convert to and from the OpenAI chat dict form that
SGLang's ``/v1/chat/completions`` and the GLM-4.5 dialect both take.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterable
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field


class SharedFieldsSet(set[str]):
    """The fields set of a record or message, shared by every one given the same fields (see
    :func:`share_fields_set`); a record replaces it with its own copy before an assignment.

    It refuses to be changed in place (``record.model_fields_set.add(...)`` raises
    ``TypeError``): a change would reach every record sharing it."""

    __slots__ = ()

    def _refuse(self, *args: object, **kwargs: object) -> Any:
        raise TypeError(
            "this record's fields set is shared with others of the same fields: assign the "
            "field (or model_copy) instead of changing model_fields_set in place"
        )

    add = discard = remove = pop = clear = update = _refuse
    difference_update = intersection_update = symmetric_difference_update = _refuse
    __ior__ = __iand__ = __isub__ = __ixor__ = _refuse


_SHARED_SETS: dict[frozenset[str], SharedFieldsSet] = {}
_MAX_SHARED_SETS = 4096  # distinct field combinations kept; beyond, records keep their own


M = TypeVar("M", bound=BaseModel)

# what pydantic's own construction sets, through the slots' descriptors (the cheapest way)
_new = object.__new__
_set = object.__setattr__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


def assemble(cls: type[M], data: dict[str, Any], fields_set: set[str]) -> M:
    """A ``cls`` holding ``data`` as it is, no validation: for a fast constructor whose
    ``data`` has every field, in field order, of exactly its field's type, and whose
    ``fields_set`` is the names it was given (each such constructor is tested equal to
    validated construction). ``cls`` must have no extra fields and no private attributes."""
    model = _new(cls)
    _set(model, "__dict__", data)
    _set_fields_set(model, fields_set)
    _set_extra(model, None)
    _set_private(model, None)
    return model


def share_fields_set(record: BaseModel) -> None:
    """Give ``record`` the shared copy of its fields set (the same names, one set for all).

    pydantic keeps one set per instance: for a call record's ~16 names, 0.7 KB of the about
    4 KB the record holds while its run is in flight. The record is unchanged otherwise:
    ``model_fields_set`` equals what it was, and an assignment (or ``model_copy``) first
    gives the record its own set, so no other record sees the change."""
    if not isinstance(record, SharesFieldsSet):
        raise TypeError(f"{type(record).__name__} does not copy a shared fields set on assignment")
    names = record.__pydantic_fields_set__
    if type(names) is SharedFieldsSet:
        return
    shared = shared_set(names)
    if shared is not None:
        object.__setattr__(record, "__pydantic_fields_set__", shared)


def shared_set(names: Iterable[str]) -> SharedFieldsSet | None:
    """The shared fields set of ``names`` (``None`` once no more combinations are kept)."""
    key = frozenset(names)
    shared = _SHARED_SETS.get(key)
    if shared is None and len(_SHARED_SETS) < _MAX_SHARED_SETS:
        shared = _SHARED_SETS[key] = SharedFieldsSet(key)
    return shared


class SharesFieldsSet(BaseModel):
    """A record that may hold a :class:`SharedFieldsSet`: an assignment copies it first."""

    def __setattr__(self, name: str, value: Any) -> None:
        names = self.__pydantic_fields_set__
        if type(names) is SharedFieldsSet:
            object.__setattr__(self, "__pydantic_fields_set__", set(names))
        super().__setattr__(name, value)
        if type(self) in _COUNTED:  # after the change (see message_edits)
            _EDITS[0] += 1

    def __delattr__(self, name: str) -> None:
        super().__delattr__(name)
        if type(self) in _COUNTED:
            _EDITS[0] += 1

    def __copy__(self) -> Any:
        copied = super().__copy__()
        object.__setattr__(copied, "__pydantic_fields_set__", set(self.__pydantic_fields_set__))
        return copied

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Any:
        copied = super().__deepcopy__(memo)
        object.__setattr__(copied, "__pydantic_fields_set__", set(self.__pydantic_fields_set__))
        return copied


def new_call_id() -> str:
    """A tool-call id in SGLang's shape (``call_`` + 24 hex digits)."""
    return f"call_{uuid.uuid4().hex[:24]}"


class ToolCall(SharesFieldsSet):
    """One call the model asked for. ``arguments`` is the parsed mapping; ``raw_arguments`` keeps
    the JSON text exactly as the server sent it (chat mode), so it can be sent back unchanged.

    ``parse_error`` is set when the model's call could not be parsed (invalid JSON arguments, an
    unclosed call, no name): the loop answers it with that error as an observation instead of
    running the tool, ``raw_arguments`` keeps what the model wrote, and the wire form
    (:meth:`arguments_json`) is always valid JSON (``{}`` for unparseable arguments) so a strict
    server accepts the assistant turn when it is sent back.
    """

    model_config = ConfigDict(frozen=True)

    id: str = Field(default_factory=new_call_id)
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    raw_arguments: str | None = None
    parse_error: str | None = None

    def arguments_json(self) -> str:
        if self.raw_arguments is not None and self.parse_error is None:
            return self.raw_arguments
        return _strict_json(self.arguments)

    def to_openai(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments_json()},
        }


def _strict_json(value: Any) -> str:
    """JSON text that a strict server accepts: a non-finite number (``inf``, ``nan``), which
    ``json.dumps`` would write as ``Infinity``/``NaN``, is written as its text instead."""
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(value), ensure_ascii=False, allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


class SystemMessage(SharesFieldsSet):
    role: Literal["system"] = "system"
    content: str

    def to_openai(self) -> dict[str, Any]:
        return {"role": "system", "content": self.content}


class UserMessage(SharesFieldsSet):
    role: Literal["user"] = "user"
    content: str

    def to_openai(self) -> dict[str, Any]:
        return {"role": "user", "content": self.content}


class AssistantMessage(SharesFieldsSet):
    role: Literal["assistant"] = "assistant"
    content: str = ""
    reasoning_content: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)

    def to_openai(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.reasoning_content is not None:
            out["reasoning_content"] = self.reasoning_content
        if self.tool_calls:
            out["tool_calls"] = [call.to_openai() for call in self.tool_calls]
        return out


class ToolMessage(SharesFieldsSet):
    role: Literal["tool"] = "tool"
    tool_call_id: str
    name: str = ""
    content: str
    is_error: bool = False

    def to_openai(self) -> dict[str, Any]:
        return {
            "role": "tool",
            "tool_call_id": self.tool_call_id,
            "name": self.name,
            "content": self.content,
        }


def tool_result(tool_call_id: str, name: str, content: str, is_error: bool) -> ToolMessage:
    """``ToolMessage(tool_call_id=..., name=..., content=..., is_error=...)`` with the shared
    fields set. Values of exactly the field types (what the loop builds) are stored as they
    are, without a validation: the same fields, field order and fields set as validated
    construction gives (tests/loop/test_step_path_trusted.py). Anything else is validated."""
    if (
        type(tool_call_id) is str
        and type(name) is str
        and type(content) is str
        and type(is_error) is bool
        and _TOOL_RESULT_SET is not None
    ):
        data = {
            "role": "tool",
            "tool_call_id": tool_call_id,
            "name": name,
            "content": content,
            "is_error": is_error,
        }
        return assemble(ToolMessage, data, _TOOL_RESULT_SET)
    message = ToolMessage(tool_call_id=tool_call_id, name=name, content=content, is_error=is_error)
    share_fields_set(message)
    return message


def assistant_reply(
    content: str, reasoning_content: str | None, tool_calls: list[ToolCall]
) -> AssistantMessage:
    """``AssistantMessage(content=..., reasoning_content=..., tool_calls=...)`` with the shared
    fields set. Values of exactly the field types (a backend's reply: ``tool_calls`` a list of
    :class:`ToolCall` made for this message, which it keeps) are stored as they are, without a
    validation: the same fields, field order and fields set as validated construction gives
    (tests/models/test_call_path_replies.py). Anything else is validated."""
    if (
        type(content) is str
        and (reasoning_content is None or type(reasoning_content) is str)
        and type(tool_calls) is list
        and _ASSISTANT_SET is not None
    ):
        for call in tool_calls:
            if type(call) is not ToolCall:
                break
        else:
            return assembled_assistant(content, reasoning_content, tool_calls)
    message = AssistantMessage(
        content=content, reasoning_content=reasoning_content, tool_calls=tool_calls
    )
    share_fields_set(message)
    return message


def assembled_assistant(
    content: str, reasoning_content: str | None, tool_calls: list[ToolCall]
) -> AssistantMessage:
    """:func:`assistant_reply` without its checks, for a caller whose values are of exactly the
    field types by construction (a parser's strings and the :class:`ToolCall` list it made)."""
    data = {
        "role": "assistant",
        "content": content,
        "reasoning_content": reasoning_content,
        "tool_calls": tool_calls,
    }
    return assemble(AssistantMessage, data, _ASSISTANT_SET or set(_ASSISTANT_GIVEN))


_TOOL_RESULT_SET = shared_set(("tool_call_id", "name", "content", "is_error"))
_ASSISTANT_GIVEN = ("content", "reasoning_content", "tool_calls")
_ASSISTANT_SET = shared_set(_ASSISTANT_GIVEN)
_CONTENT_SET = shared_set(("content",))


def system_message(content: str) -> SystemMessage:
    """``SystemMessage(content=...)`` with the shared fields set; a plain ``str`` is stored as
    it is, without a validation (tests/loop/test_step_path_trusted.py)."""
    if type(content) is str and _CONTENT_SET is not None:
        return assemble(SystemMessage, {"role": "system", "content": content}, _CONTENT_SET)
    message = SystemMessage(content=content)
    share_fields_set(message)
    return message


def user_message(content: str) -> UserMessage:
    """``UserMessage(content=...)`` with the shared fields set; a plain ``str`` is stored as
    it is, without a validation (tests/loop/test_step_path_trusted.py)."""
    if type(content) is str and _CONTENT_SET is not None:
        return assemble(UserMessage, {"role": "user", "content": content}, _CONTENT_SET)
    message = UserMessage(content=content)
    share_fields_set(message)
    return message


# How many times a field of a message (of the four classes) was assigned or deleted in this
# process, each counted after the change: a message's fields are strings and an assistant's
# list of frozen tool calls, so a message that is the same object, while this count and its
# tool calls stay the same, is unchanged (chat_wire.WireHistory relies on it).
_EDITS = [0]
_COUNTED = frozenset({SystemMessage, UserMessage, AssistantMessage, ToolMessage})


def message_edits() -> int:
    """The count of assignments (and deletions) of message fields so far in this process."""
    return _EDITS[0]


Message = Annotated[
    SystemMessage | UserMessage | AssistantMessage | ToolMessage, Field(discriminator="role")
]


def to_openai(messages: list[Message]) -> list[dict[str, Any]]:
    return [m.to_openai() for m in messages]


def from_openai(item: dict[str, Any]) -> Message:
    """Build a message from an OpenAI chat dict (tool-call arguments as JSON text or mapping)."""
    role = item.get("role")
    content = item.get("content") or ""
    if not isinstance(content, str):
        content = " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    if role == "system":
        return SystemMessage(content=content)
    if role == "user":
        return UserMessage(content=content)
    if role == "tool":
        return ToolMessage(
            tool_call_id=str(item.get("tool_call_id", "")),
            name=str(item.get("name") or ""),
            content=content,
        )
    if role == "assistant":
        calls: list[ToolCall] = []
        for raw in item.get("tool_calls") or []:
            fn = raw.get("function", raw)
            args = fn.get("arguments") or {}
            raw_text = args if isinstance(args, str) else None
            parsed = json.loads(args) if isinstance(args, str) and args else args
            calls.append(
                ToolCall(
                    id=raw.get("id") or new_call_id(),
                    name=fn["name"],
                    arguments=parsed if isinstance(parsed, dict) else {},
                    raw_arguments=raw_text,
                )
            )
        return AssistantMessage(
            content=content, reasoning_content=item.get("reasoning_content"), tool_calls=calls
        )
    raise ValueError(f"unknown message role: {role!r}")
