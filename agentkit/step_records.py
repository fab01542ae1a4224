"""The environment-step records the loop writes: a tool result, an approval pause or decision."""

from __future__ import annotations

import json
import time
from typing import Any

from agentkit.messages import SharedFieldsSet, ToolCall, assemble, shared_set
from agentkit.tool import ToolOutcome
from agentkit.trajectory.records import EnvStepRecord, share_fields_set


def tool_step(
    episode_id: str,
    index: int,
    turn: int,
    call: ToolCall,
    outcome: ToolOutcome,
    started_at: float,
    ran: ToolCall | None = None,
) -> EnvStepRecord:
    """The record of one call's result; ``ran`` is the call as it ran (edited arguments).

    Every tool step has the same fields given, and shares one fields set. Values of exactly
    the field types (what the loop builds) are stored as they are, without a validation: the
    same fields, field order and fields set as validated construction gives
    (tests/loop/test_step_path_trusted.py). Anything else is validated."""
    values: dict[str, Any] = {
        "episode_id": episode_id,
        "index": index,
        "turn": turn,
        "step_type": "tool",
        "call": (ran or call) if call.name or call.parse_error else None,
        "status": outcome.status.value,
        "error": outcome.error,
        "error_type": outcome.error_type,
        "raw_output_chars": outcome.raw_chars,
        "output": outcome.output,
        "truncated": outcome.truncated,
        "latency_s": outcome.elapsed_s,
        "started_at": started_at or time.time(),
    }
    if _TOOL_STEP is not None and _typed(values):
        template, shared = _TOOL_STEP
        fields = template.copy()
        fields.update(values)
        return assemble(EnvStepRecord, fields, shared)
    record = EnvStepRecord(**values)
    share_fields_set(record)  # every tool step has the same fields
    return record


_STR_OR_NONE = (str, type(None))


def _typed(values: dict[str, Any]) -> bool:
    """Whether every value of a tool step is of exactly its field's type (no coercion, no
    subclass a validation would turn into the base type)."""
    call = values["call"]
    return (
        type(values["episode_id"]) is str
        and type(values["index"]) is int
        and type(values["turn"]) is int
        and (call is None or type(call) is ToolCall)
        and type(values["status"]) is str
        and type(values["error"]) in _STR_OR_NONE
        and type(values["error_type"]) in _STR_OR_NONE
        and type(values["raw_output_chars"]) is int
        and type(values["output"]) is str
        and type(values["truncated"]) is bool
        and type(values["latency_s"]) is float
        and type(values["started_at"]) is float
    )


_GIVEN = (
    "episode_id",
    "index",
    "turn",
    "step_type",
    "call",
    "status",
    "error",
    "error_type",
    "raw_output_chars",
    "output",
    "truncated",
    "latency_s",
    "started_at",
)
_IMMUTABLE = (str, int, float, bool, type(None))


def _tool_step_template(
    cls: type[EnvStepRecord],
) -> tuple[dict[str, Any], SharedFieldsSet] | None:
    """Every field of a tool step in field order with its default (the given ones are
    replaced), and the shared set of the given names; ``None`` (always validate) if the record
    type has a field this cannot fill the way validation does: a default factory, a mutable
    default, a required field not given, a constraint, private attributes or a validator."""
    template: dict[str, Any] = {}
    if cls.model_config.get("validate_default"):
        return None
    for name, info in cls.model_fields.items():
        if info.metadata:  # constraints or validators in the annotation
            return None
        if name in _GIVEN:
            template[name] = None
            continue
        if info.default_factory is not None or info.is_required():
            return None
        if type(info.default) not in _IMMUTABLE:
            return None
        template[name] = info.default
    decorators = cls.__pydantic_decorators__
    if (
        set(_GIVEN) - set(template)
        or cls.__private_attributes__
        or decorators.field_validators
        or decorators.model_validators
        or decorators.validators
        or decorators.root_validators
    ):
        return None
    shared = shared_set(_GIVEN)
    return (template, shared) if shared is not None else None


_TOOL_STEP = _tool_step_template(EnvStepRecord)


def approval_step(
    episode_id: str, index: int, turn: int, status: str, payload: list[Any]
) -> EnvStepRecord:
    """A pause for approval (``status`` "awaiting_approval", the pending calls) or the
    decisions a resume went on with (``status`` "decided"), as JSON in ``output``."""
    return EnvStepRecord(
        episode_id=episode_id,
        index=index,
        turn=turn,
        step_type="approval",
        status=status,
        output=json.dumps(payload, ensure_ascii=False),
        started_at=time.time(),
    )
