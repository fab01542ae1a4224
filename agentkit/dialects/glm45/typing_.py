"""Typing of tool-call argument values from the tools' JSON schemas.

GLM-4.5 writes every argument value as text between ``<arg_value>`` tags: strings raw, other
values as JSON. The expected type comes from the tool's schema the way SGLang's glm45 parser
reads it (``type``, type arrays, ``anyOf``/``oneOf``, ``enum``, ``allOf``, ``properties``,
``items``); the value is then decoded for that type.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from json.encoder import encode_basestring
from typing import Any, TypeGuard

_MAX_LITERAL_EVAL = 10_000
_KNOWN_TYPES = frozenset({"integer", "number", "boolean", "object", "array", "null"})
# A JSON integer written plainly (what the template writes for an int); short enough that
# ``int`` gives exactly what ``json.loads`` gives.
_PLAIN_INT = re.compile(r"-?(?:0|[1-9][0-9]{0,17})")
_BOOLEANS = {"true": True, "false": False}
_JSON_SPACE = re.compile(r"[ \t\n\r]*")  # what the json module skips around a value
_JSON_STARTS = frozenset('"{[-0123456789tfnNI')  # NaN and Infinity start with N and I


class NotDecoded:
    """The type of ``NOT_DECODED``: what ``decode_json`` gives for text that is not JSON."""


NOT_DECODED = NotDecoded()


def _is_mapping(value: object) -> TypeGuard[Mapping[str, Any]]:
    """``isinstance(value, Mapping)``, with the common ``dict`` answered before the slow ABC check."""
    return type(value) is dict or isinstance(value, Mapping)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# ``json.loads(raw, parse_constant=...)`` and ``json.dumps(value, ensure_ascii=False)`` build a
# codec per call; shared ones do the same work (``decode`` is what ``loads`` runs on a ``str``).
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_ENCODER = json.JSONEncoder(ensure_ascii=False)
_STRICT_ENCODER = json.JSONEncoder(allow_nan=False)
_escape = encode_basestring


def json_text(value: Any) -> str:
    """``json.dumps(value, ensure_ascii=False)``, without building an encoder for a scalar."""
    kind = type(value)
    if kind is str:
        return _escape(value)
    if kind is int:
        return int.__repr__(value)
    if kind is bool:
        return "true" if value else "false"
    if value is None:
        return "null"
    return _ENCODER.encode(value)


def schema_properties(schema: Any) -> Mapping[str, Any]:
    """Top-level ``properties`` of a ``parameters`` schema (merged across anyOf/oneOf/allOf)."""
    if not _is_mapping(schema):
        return {}
    properties = schema.get("properties")
    if _is_mapping(properties):
        return properties
    merged: dict[str, Any] = {}
    for keyword in ("anyOf", "oneOf", "allOf"):
        branches = schema.get(keyword)
        if isinstance(branches, list):
            for branch in branches:
                for key, value in schema_properties(branch).items():
                    merged.setdefault(key, value)
    return merged


def infer_type(schema: Any) -> str | None:
    """The primary JSON type a property schema asks for, or None when it gives no hint."""
    if not _is_mapping(schema):
        return None
    declared = schema.get("type")
    if isinstance(declared, str):
        return declared
    if isinstance(declared, list) and declared:
        non_null = [t for t in declared if t != "null"]
        return str(non_null[0]) if non_null else "string"
    variants = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(variants, list):
        types = [t for t in (infer_type(v) for v in variants) if t]
        distinct = set(types)
        if len(distinct) == 1:
            return types[0]
        if len(distinct) == 2 and "null" in distinct:
            return next(t for t in types if t != "null")
        if "string" in distinct:
            return "string"
        if types:
            return types[0]
    enum = schema.get("enum")
    if isinstance(enum, list):
        kinds = {_json_kind(v) for v in enum}
        return kinds.pop() if len(kinds) == 1 else "string"
    all_of = schema.get("allOf")
    if isinstance(all_of, list):
        for branch in all_of:
            inferred = infer_type(branch)
            if inferred and inferred != "string":
                return inferred
        return "string"
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return None


def allows_null(schema: Any) -> bool:
    """Whether a property schema admits ``null`` (type arrays, anyOf/oneOf branches, enum)."""
    if not _is_mapping(schema):
        return False
    declared = schema.get("type")
    if declared == "null" or (isinstance(declared, list) and "null" in declared):
        return True
    for keyword in ("anyOf", "oneOf"):
        variants = schema.get(keyword)
        if isinstance(variants, list) and any(allows_null(v) for v in variants):
            return True
    enum = schema.get("enum")
    return isinstance(enum, list) and None in enum


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "string"


class ToolSchemas:
    """Argument types of the tools offered, looked up by call name and argument key (lazily:
    the tool list is read only as far as the names called, only the schemas of the tools
    actually called are walked, and each argument's type is worked out once).

    ``parse`` and ``StreamParser`` take one from the tool list they are given
    (``schema_cache.schemas_for``: a list passed again, holding the same tool objects, gets the
    schemas compiled for it). A caller can also pass ``ToolSchemas.compiled(tools)`` instead of
    the list: the lookups are then kept from one completion to the next. The tools must then
    stay as they were; compile again when they change. Argument types are kept only for the
    tools offered and the keys their schemas name.
    """

    __slots__ = ("_properties", "_specs", "_types", "_unread", "given")

    def __init__(self, tools: Sequence[Mapping[str, Any]] | None) -> None:
        self.given = tools is not None
        self._unread: Iterator[Mapping[str, Any]] | None = iter(tools) if tools else None
        self._specs: dict[str, Mapping[str, Any]] = {}
        self._properties: dict[str, Mapping[str, Any]] = {}
        self._types: dict[str, dict[str, tuple[Any, str | None]]] = {}

    @classmethod
    def compiled(cls, tools: Sequence[Mapping[str, Any]] | None) -> ToolSchemas:
        """Schemas for many completions: the whole tool list is indexed now, so parsers that
        share this object share no reading position."""
        schemas = cls(tools)
        schemas._spec(None)
        return schemas

    def _spec(self, name: str | None) -> Mapping[str, Any] | None:
        """The first tool called ``name``, reading the list only as far as needed (all of it
        for ``None``)."""
        specs = self._specs
        found = specs.get(name) if name is not None else None
        if found is not None or self._unread is None:
            return found
        for tool in self._unread:
            # ``_is_mapping`` written out: this loop runs for every tool before the one called
            if type(tool) is not dict and not isinstance(tool, Mapping):
                continue
            function = tool.get("function")
            spec: Mapping[str, Any] = (
                function if type(function) is dict or isinstance(function, Mapping) else tool
            )
            named = spec.get("name")
            if isinstance(named, str) and named not in specs:
                specs[named] = spec
                if named == name:
                    return spec
        self._unread = None
        return None

    def knows(self, name: str) -> bool:
        return self._spec(name) is not None

    def property_schema(self, name: str, key: str) -> Any:
        properties = self._properties.get(name)
        if properties is None:
            spec = self._spec(name)
            if spec is None:
                return None
            properties = self._properties[name] = schema_properties(spec.get("parameters"))
        return properties.get(key)

    def types_of(self, name: str) -> dict[str, tuple[Any, str | None]]:
        """The argument types of tool ``name`` worked out so far, by key (what
        ``argument_type`` gives; it adds each key it works out). A parser reads a key here
        first and asks ``argument_type`` only for keys not in it yet."""
        found = self._types.get(name)
        if found is None:
            found = {}
            if self._spec(name) is not None:  # kept for the tools offered only: a model
                self._types[name] = found  # naming many unknown tools grows nothing
        return found

    def argument_type(self, name: str, key: str) -> tuple[Any, str | None]:
        """The property schema of ``key`` in tool ``name`` and the type it asks for."""
        types = self.types_of(name)
        found = types.get(key)
        if found is None:
            schema = self.property_schema(name, key)
            found = (schema, infer_type(schema))
            if schema is not None:  # keys the schema does not name are not kept (see above)
                types[key] = found
        return found


def decode_json(raw: str) -> Any:
    """SGLang's first two strategies: the text as JSON, then the text unescaped as JSON."""
    decoded = _json_value(raw)
    if decoded is not NOT_DECODED or ('"' not in raw and "\\" not in raw):
        # without a quote or a backslash, unescaping gives the same text (or fails on a
        # control character), so the second strategy cannot succeed where the first failed
        return decoded
    try:
        inner = _DECODER.decode('{"v": "' + raw + '"}')["v"]
        return _DECODER.decode(inner)
    except (ValueError, KeyError, TypeError, RecursionError):
        return NOT_DECODED


def _json_value(text: str) -> Any:
    """``_DECODER.decode(text)``, or ``NOT_DECODED`` where it raises; text that cannot start a
    JSON value, or has more after it, is answered without raising (raising is slow)."""
    start = _json_space_end(text, 0)
    if start == len(text) or text[start] not in _JSON_STARTS:
        return NOT_DECODED
    try:
        value, end = _DECODER.raw_decode(text, start)
    except (ValueError, RecursionError):
        return NOT_DECODED
    if _json_space_end(text, end) != len(text):
        return NOT_DECODED
    return value


def _json_space_end(text: str, at: int) -> int:
    match = _JSON_SPACE.match(text, at)  # always matches (maybe empty)
    return match.end() if match else at


def _literal(raw: str) -> Any:
    text = raw.strip()
    if not text or len(text) > _MAX_LITERAL_EVAL:
        return NOT_DECODED
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return NOT_DECODED


def _to_number(text: str) -> Any:
    try:
        return float(text) if "." in text or "e" in text.lower() else int(text)
    except ValueError:
        return text


def _fits(value: Any, expected: str) -> bool:
    if expected == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if expected == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if expected == "boolean":
        return isinstance(value, bool)
    if expected == "object":
        return isinstance(value, dict)
    if expected == "array":
        return isinstance(value, list)
    if expected == "null":
        return value is None
    return True


def _jsonable(value: Any) -> bool:
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return True
    if kind is float:
        return math.isfinite(value)
    try:
        _STRICT_ENCODER.encode(value)
    except (TypeError, ValueError, RecursionError):
        return False
    return True


def decode_value(raw: str, schema: Any) -> tuple[Any, str | None]:
    """The value for one ``<arg_value>`` text, and a problem message when it does not fit.

    String-typed values are the raw text verbatim (the exact inverse of the template, which
    writes strings unquoted and unescaped). Untyped values are JSON when they parse as JSON,
    else the raw text; a JSON number that is not finite (``1e999``) keeps the raw text, with a
    problem, so the arguments always serialise as valid JSON. Other types are decoded as JSON
    (or a Python literal, as SGLang falls back to) and checked; a value that does not fit is
    kept as the raw text with a problem.
    """
    return decode_typed(raw, schema, infer_type(schema))


def decode_typed(raw: str, schema: Any, expected: str | None) -> tuple[Any, str | None]:
    """``decode_value`` with the schema's type already worked out (``infer_type(schema)``)."""
    if expected == "string":
        return raw, None
    untyped = expected not in _KNOWN_TYPES
    if (untyped or expected == "integer" or expected == "number") and _PLAIN_INT.fullmatch(raw):
        return int(raw), None
    if (untyped or expected == "boolean") and raw in _BOOLEANS:
        return _BOOLEANS[raw], None
    return decode_without_shortcuts(raw, schema, expected)


def decode_without_shortcuts(raw: str, schema: Any, expected: str | None) -> tuple[Any, str | None]:
    """``decode_typed`` without its shortcuts for plain integers and booleans (the reference
    the shortcuts are tested against)."""
    if expected == "string":
        return raw, None
    untyped = expected not in _KNOWN_TYPES
    decoded = decode_json(raw)
    if untyped:
        if decoded is NOT_DECODED:
            return raw, None
        if not _jsonable(decoded):  # e.g. 1e999, which Python reads as inf: not JSON
            return raw, f"value {_preview(raw)} has a number JSON cannot hold (not finite)"
        return decoded, None
    assert expected is not None
    if decoded is NOT_DECODED:
        decoded = _literal(raw)
        if isinstance(decoded, tuple):
            decoded = list(decoded)
    if expected == "number" and isinstance(decoded, str):
        decoded = _to_number(decoded.strip())
    fits = _fits(decoded, expected) or (decoded is None and allows_null(schema))
    if decoded is not NOT_DECODED and _jsonable(decoded) and fits:
        return decoded, None
    return raw, f"value {_preview(raw)} is not a valid {expected}"


def _preview(raw: str) -> str:
    return repr(raw if len(raw) <= 80 else raw[:77] + "...")
