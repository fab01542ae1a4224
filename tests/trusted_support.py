"""The check every trusted (unvalidated) constructor's test makes: equal to validation."""

from __future__ import annotations

from pydantic import BaseModel

from agentkit.trajectory.records import SharedParams


def assert_same(fast: BaseModel, validated: BaseModel) -> None:
    """``fast`` (built without validation) is what pydantic builds: the same dump, JSON,
    fields set, field order, value types (a shared read-only ``SharedParams`` reads as the
    dict validation gives), extra and private state."""
    assert type(fast) is type(validated)
    assert fast.model_dump() == validated.model_dump()
    assert fast.model_fields_set == validated.model_fields_set
    assert fast.model_dump_json() == validated.model_dump_json()
    assert fast.model_dump_json(exclude_unset=True) == validated.model_dump_json(exclude_unset=True)
    assert list(fast.__dict__) == list(validated.__dict__)
    for name, value in validated.__dict__.items():
        kind = type(fast.__dict__[name])
        assert (dict if kind is SharedParams else kind) is type(value), name
    assert fast.__pydantic_extra__ == validated.__pydantic_extra__
    assert fast.__pydantic_private__ == validated.__pydantic_private__
    assert fast == validated
