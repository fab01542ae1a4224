"""json_decode.loads gives exactly what json.loads gives (value, types, key order, or the same
exception), whether orjson decodes the text or the standard library does; the transport's
malformed replies stay the same typed failures."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentkit.models import json_decode, transport
from agentkit.models.failures import ProtocolError

orjson = pytest.importorskip("orjson")


def same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down, dict keys in the same order, floats bit
    for bit (NaN, -0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return math.copysign(1.0, a) == math.copysign(1.0, b) and (
            a == b or (math.isnan(a) and math.isnan(b))
        )
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def outcome(decode: Any, raw: bytes | str) -> tuple[str, Any]:
    try:
        return "value", decode(raw)
    except Exception as exc:  # the same exception: type and message
        return "error", (type(exc), str(exc))


def assert_like_stdlib(raw: bytes | str) -> None:
    got, expected = outcome(json_decode.loads, raw), outcome(json.loads, raw)
    assert got[0] == expected[0], (raw, got, expected)
    if got[0] == "value":
        assert same(got[1], expected[1]), (raw, got, expected)
    else:
        assert got[1] == expected[1], (raw, got, expected)


# every code point, lone surrogates included
_chars = st.characters(codec=None, exclude_categories=())
_ints = st.one_of(
    st.integers(),
    st.integers(min_value=2**62, max_value=2**66),
    st.integers(min_value=-(2**66), max_value=-(2**62)),
    st.integers(min_value=-(10**20), max_value=10**20),
)
_scalars = st.one_of(st.none(), st.booleans(), _ints, st.floats(), st.text(_chars, max_size=12))


class _Pairs(list[tuple[str, Any]]):
    """An object with its pairs in order (duplicates written twice)."""


def _pairs_object(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    # a list of pairs, written as an object: duplicate keys are kept in the text
    return st.lists(st.tuples(st.sampled_from(["a", "b", "k", "é"]) | st.text(_chars), children))


_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4) | _pairs_object(children).map(_Pairs),
    max_leaves=20,
)


def write(value: Any, ascii_only: bool, space: str) -> str:
    """JSON text of ``value`` as json.dumps writes each part (NaN/Infinity for non-finite)."""
    if isinstance(value, _Pairs):
        items = (
            f"{write(k, ascii_only, space)}:{space}{write(v, ascii_only, space)}" for k, v in value
        )
        return "{" + f",{space}".join(items) + "}"
    if isinstance(value, list):
        return "[" + f",{space}".join(write(v, ascii_only, space) for v in value) + "]"
    return json.dumps(value, ensure_ascii=ascii_only)


@settings(max_examples=400, deadline=None)
@given(
    value=_values,
    ascii_only=st.booleans(),
    space=st.sampled_from(["", " ", "\n  ", "\t"]),
    as_text=st.booleans(),
)
def test_generated_json_decodes_as_the_stdlib_decodes_it(
    value: Any, ascii_only: bool, space: str, as_text: bool
) -> None:
    text = write(value, ascii_only, space)
    assert_like_stdlib(text if as_text else text.encode("utf-8", "surrogatepass"))


_number_literals = st.builds(
    lambda sign, whole, frac, exp: f"{sign}{whole}{frac}{exp}",
    st.sampled_from(["", "-"]),
    st.one_of(st.just("0"), st.from_regex(r"[1-9][0-9]{0,24}", fullmatch=True)),
    st.one_of(st.just(""), st.from_regex(r"\.[0-9]{1,24}", fullmatch=True)),
    st.one_of(st.just(""), st.from_regex(r"[eE][+-]?[0-9]{1,4}", fullmatch=True)),
)


@settings(max_examples=500, deadline=None)
@given(number=_number_literals | st.floats().map(repr), wrap=st.sampled_from(["{}", "[{}]"]))
def test_number_literals_decode_as_the_stdlib_decodes_them(number: str, wrap: str) -> None:
    """Big integers stay ints (orjson 3.8 would give a float), floats round alike, 1e400 is
    inf, nan/inf reprs are the stdlib's constants or its errors."""
    raw = wrap.replace("{}", number).replace("nan", "NaN").replace("inf", "Infinity")
    assert_like_stdlib(raw.encode())
    assert_like_stdlib('{"n":' + raw + "}")


@settings(max_examples=400, deadline=None)
@given(
    raw=st.text(
        alphabet=' \t\n\r\x00\ufeff"\\/{}[]:,-+.0123456789eEaflsrtunNIiyu\ud800', max_size=16
    )
)
def test_malformed_and_odd_texts_fail_or_decode_as_the_stdlib(raw: str) -> None:
    assert_like_stdlib(raw)
    assert_like_stdlib(raw.encode("utf-8", "surrogatepass"))


@pytest.mark.parametrize(
    "raw",
    [
        b"[18446744073709551616]",
        b"[-9223372036854775809]",
        b'{"a": 1e400, "b": -1e400}',
        b"[NaN, Infinity, -Infinity]",
        b'"\\ud800"',
        b'"\xed\xa0\x80"',  # a surrogate's UTF-8 bytes: the stdlib reads them (surrogatepass)
        b"\xef\xbb\xbf{}",  # BOM: the stdlib takes it in bytes
        "[1,2]".encode("utf-16-le"),
        b'"\xff"',  # not UTF-8: UnicodeDecodeError, as the stdlib raises
        b'{"a": 1, "b": 2, "a": 3}',
        b"[" * 1200 + b"]" * 1200,  # the stdlib's RecursionError, not orjson's value
        b"[" * 300 + b"]" * 300,
    ],
)
def test_what_orjson_reads_otherwise_is_the_stdlibs(raw: bytes) -> None:
    assert_like_stdlib(raw)


class _Counting:
    """orjson, counting its loads."""

    JSONDecodeError = orjson.JSONDecodeError

    def __init__(self) -> None:
        self.calls = 0

    def loads(self, raw: bytes) -> Any:
        self.calls += 1
        return orjson.loads(raw)


def test_orjson_decodes_a_plain_reply_and_not_one_with_a_long_number(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counting = _Counting()
    monkeypatch.setattr(json_decode, "orjson", counting)
    reply = b'{"choices": [{"message": {"content": "hi"}}], "usage": {"prompt_tokens": 12}}'
    assert json_decode.loads(reply) == json.loads(reply)
    assert json_decode.loads(reply.decode()) == json.loads(reply)
    assert counting.calls == 2
    assert json_decode.loads(b'{"n": 1234567890123456789}') == {"n": 1234567890123456789}
    assert counting.calls == 2  # a run of 19 digits: the stdlib only


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"\xff\xfe", b"", b'{"a": "\xff"}'])
def test_a_malformed_reply_is_the_same_protocol_error(raw: bytes) -> None:
    with pytest.raises(ProtocolError) as caught:
        transport._loads(raw)
    kind, expected = outcome(json.loads, raw)
    if kind == "error":
        assert (type(caught.value.__cause__), str(caught.value.__cause__)) == expected
        assert str(caught.value) == f"the server sent invalid JSON: {raw[:200]!r}"
    else:
        assert not isinstance(expected, dict)
        assert str(caught.value) == f"the server sent JSON that is not an object: {raw[:200]!r}"


def _depth(value: Any) -> int:
    """How many lists and dicts deep ``value`` nests (a scalar: 0)."""
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


# strings full of what could be taken for structure: brackets, quotes, backslash runs
_tricky_text = st.text(st.sampled_from(["[", "]", "{", "}", '"', "\\", "a", "é", "\n"]), max_size=8)
_nested: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.integers() | _tricky_text | st.just([]) | st.just({}),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_tricky_text, children),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(value=_nested, ascii_only=st.booleans(), indent=st.sampled_from([None, 1]))
def test_nests_within_counts_the_levels_of_the_value(
    value: Any, ascii_only: bool, indent: int | None
) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only, indent=indent).encode()
    depth = _depth(value)
    for levels in range(depth + 2):
        assert json_decode.nests_within(text, levels) is (depth <= levels), (text, levels)


def test_a_long_shallow_reply_is_orjsons_and_a_deep_one_the_stdlibs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A /generate reply with a thousand log-probs (thousands of brackets, four levels) is
    decoded by orjson; a text nesting deeper than MAX_ORJSON_DEPTH still goes to the stdlib."""
    reply = {
        "text": 'a [["quoted\\" text',
        "output_ids": list(range(1000)),
        "meta_info": {"output_token_logprobs": [[-0.5, i, None] for i in range(1000)]},
    }
    raw = json.dumps(reply).encode()
    levels = json_decode.MAX_ORJSON_DEPTH + 1
    deep = b"[" * levels + b"]" * levels
    calls: list[Any] = []
    decode = json.loads

    def stdlib(raw: Any) -> Any:
        calls.append(raw)
        return decode(raw) if raw is not deep else "the stdlib's"

    monkeypatch.setattr(json, "loads", stdlib)
    assert same(json_decode.loads(raw), reply)
    assert calls == []
    assert json_decode.loads(deep) == "the stdlib's"
    assert calls == [deep]
