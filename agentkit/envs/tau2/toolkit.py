"""tau2-bench's environment contract: toolkits over a pydantic database, and the environment that
holds an agent toolkit and (for dual-control domains) a user toolkit.

A toolkit is a class whose tool methods carry :func:`tool`; other public methods are helpers a
task's initialisation actions and assertions may call by name (``set_data_usage``,
``assert_line_status``). Tool methods return models, dicts, strings or numbers; the environment
turns a result into tau2's observation text (:func:`observation_text`) and an exception into
``"Error: <message>"``. Databases hash as tau2 does (:func:`model_hash`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

Requestor = Literal["assistant", "user"]
F = TypeVar("F", bound=Callable[..., Any])
_TOOL_ATTR = "__tau2_tool__"


class StrictModel(BaseModel):
    """tau2's database records refuse unknown fields."""

    model_config = ConfigDict(extra="forbid")


def tool(*, mutates: bool = False) -> Callable[[F], F]:
    """Mark a toolkit method as a tool the model may call; ``mutates`` tools are the ones the
    evaluation re-runs when it rebuilds an episode's final state."""

    def mark(fn: F) -> F:
        setattr(fn, _TOOL_ATTR, mutates)
        return fn

    return mark


def dict_hash(value: Any) -> str:
    """SHA-256 of ``json.dumps(value, sort_keys=True, default=str)``."""
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def model_hash(model: BaseModel) -> str:
    """:func:`dict_hash` of ``model.model_dump()``. Databases made of tables of records
    (``{table: {key: record}}``, as retail and airline) are hashed record by record: each
    record's text is cached under its ``model_dump_json`` fingerprint (which tells ``1`` from
    ``1.0`` and a date from a datetime), so unchanged records are not serialised again. The
    result is the same digest."""
    tables = {name: getattr(model, name) for name in type(model).model_fields}
    if not all(_is_table(table) for table in tables.values()):
        return dict_hash(model.model_dump())
    parts = [json.dumps(name) + ": " + _table_text(table) for name, table in sorted(tables.items())]
    text = "{" + ", ".join(parts) + "}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_RECORD_TEXT: dict[tuple[type[BaseModel], bytes], str] = {}
_RECORD_CACHE_LIMIT = 200_000


def _is_table(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(key, str) and isinstance(item, BaseModel) for key, item in value.items()
    )


def _record_text(record: BaseModel) -> str:
    key = (type(record), record.__pydantic_serializer__.to_json(record))
    text = _RECORD_TEXT.get(key)
    if text is None:
        text = json.dumps(record.model_dump(), sort_keys=True, default=str)
        if len(_RECORD_TEXT) >= _RECORD_CACHE_LIMIT:
            _RECORD_TEXT.clear()
        _RECORD_TEXT[key] = text
    return text


def _table_text(table: dict[str, BaseModel]) -> str:
    items = [json.dumps(key) + ": " + _record_text(table[key]) for key in sorted(table)]
    return "{" + ", ".join(items) + "}"


def deep_merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Nested dicts merge key by key; any other value replaces (tau2's addict update)."""
    out = dict(base)
    for key, value in update.items():
        current = out.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            out[key] = deep_merge(current, value)
        else:
            out[key] = _plain(value)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _process(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, str) or value is None:
        return value
    if isinstance(value, int | float | bool):
        return str(value)
    if isinstance(value, list):
        return [_process(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_process(item) for item in value)
    if isinstance(value, dict):
        return {key: _process(item) for key, item in value.items()}
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise ValueError(f"Unsupported type: {type(value)}")


def observation_text(result: Any) -> str:
    """A tool result as tau2 shows it: strings as they are, anything else as JSON with numbers
    turned into strings and models dumped."""
    if isinstance(result, str):
        return result
    return json.dumps(_process(result), default=str)


class Toolkit:
    """Tools over one database (``self.db``); subclasses declare tools with :func:`tool`."""

    db: Any
    tool_flags: ClassVar[dict[str, bool]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        flags: dict[str, bool] = {}
        for klass in reversed(cls.__mro__):
            for name, member in vars(klass).items():
                if callable(member) and hasattr(member, _TOOL_ATTR):
                    flags[name] = bool(getattr(member, _TOOL_ATTR))
        cls.tool_flags = flags

    def __init__(self, db: Any) -> None:
        self.db = db
        self._hash: str | None = None

    def invalidate(self) -> None:
        """Forget the cached hash (after anything that may have changed the database)."""
        self._hash = None

    def has_tool(self, name: str) -> bool:
        return name in self.tool_flags

    def mutates(self, name: str) -> bool:
        return self.tool_flags.get(name, True)

    def use_tool(self, name: str, arguments: Mapping[str, Any]) -> Any:
        if name not in self.tool_flags:
            raise ValueError(f"Tool '{name}' not found.")
        if self.tool_flags[name]:
            self._hash = None
        return getattr(self, name)(**arguments)

    def call_function(self, name: str, arguments: Mapping[str, Any]) -> Any:
        """Any public method by name (initialisation actions and assertions)."""
        if name.startswith("__"):
            raise ValueError(f"Function {name} not found")
        self._hash = None
        return getattr(self, name)(**arguments)

    def update_db(self, update: Mapping[str, Any]) -> None:
        merged = deep_merge(self.db.model_dump(), update)
        self.db = type(self.db).model_validate(merged)
        self._hash = None

    def db_hash(self) -> str:
        """tau2's hash of the database; cached until a mutating tool, a helper function or
        :meth:`invalidate` may have changed it (read-only tools leave it alone)."""
        if self._hash is None:
            self._hash = model_hash(self.db)
        return self._hash
