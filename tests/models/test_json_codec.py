"""The transport's JSON (orjson when installed, else the standard library): both paths give
the same values for what a server and a request hold, the awkward ones included."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from typing import Any

import pytest

from agentkit.models import json_decode, transport
from agentkit.models.base import ModelSettings
from agentkit.models.failures import ProtocolError

VALUES: list[Any] = [
    {"model": "m", "messages": [{"role": "user", "content": "héllo \u2028 ✓ 🙂"}]},
    {"nested": {"a": [1, 2.5, True, None, "x"]}, "empty": {}, "list": []},
    {"big": 2**70, "neg": -(2**65)},  # beyond 64 bits: orjson refuses, the stdlib takes it
    {1: "int key", "k": "v"},
    {"lone": "\ud800"},  # a lone surrogate (stdlib only)
]


@pytest.fixture(params=["orjson", "stdlib"])
def codec(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "stdlib":
        monkeypatch.setattr(transport, "orjson", None)
        monkeypatch.setattr(json_decode, "orjson", None)
    elif getattr(transport, "orjson", None) is None:
        pytest.skip("orjson is not installed (the optional 'fast' extra)")
    return str(request.param)


@pytest.mark.parametrize("value", VALUES[:4])
def test_dumps_is_the_same_json_as_the_stdlib(codec: str, value: Any) -> None:
    assert json.loads(transport._dumps(value)) == json.loads(json.dumps(value))


@dataclass
class _Point:
    x: int


class _Text(str):
    pass


@pytest.mark.parametrize(
    "value",
    [{"when": datetime.datetime(2026, 12, 2, 3, 0)}, {"point": _Point(1)}, {"s": _Text("x")}],
    ids=["datetime", "dataclass", "str-subclass"],
)
def test_what_the_stdlib_refuses_or_writes_otherwise_goes_to_the_stdlib(
    codec: str, value: Any
) -> None:
    """orjson would write these; the request must not depend on which encoder is installed."""
    try:
        expected: Any = json.loads(json.dumps(value))
    except TypeError:
        with pytest.raises(TypeError):
            transport._dumps(value)
        return
    assert json.loads(transport._dumps(value)) == expected


def test_settings_refuse_non_json_or_non_finite_extras() -> None:
    for bad in ({"x": float("nan")}, {"x": float("inf")}, {"when": datetime.datetime(2026, 1, 1)}):
        with pytest.raises(ValueError, match="plain JSON with finite numbers"):
            ModelSettings(extra=bad)
    assert ModelSettings(extra={"ok": [1, 2.5, None]}).extra == {"ok": [1, 2.5, None]}


def test_a_lone_surrogate_fails_as_before(codec: str) -> None:
    with pytest.raises(UnicodeEncodeError):
        transport._dumps(VALUES[4])


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": 1, "b": [1.5, "x", null], "c": {"d": true}}',
        '{"t": "h\u00e9llo", "u": "✓"}'.encode(),
        b'{"big": 123456789012345678901234567890}',
        b'{"x": NaN, "y": Infinity}',
        b'{"a": 1, "a": 2}',
        b'{"x": 1e400, "y": -0.0}',
        b'{"s": "\\ud800"}',
    ],
)
def test_loads_equals_the_stdlib(codec: str, raw: bytes) -> None:
    assert repr(transport._loads(raw)) == repr(json.loads(raw))


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"\xff\xfe", b""])
def test_bad_replies_are_protocol_errors(codec: str, raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        transport._loads(raw)
