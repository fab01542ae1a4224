"""render / render_continuation against the published GLM-4.5 template rendered by jinja2."""

from __future__ import annotations

import ast
import copy
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jinja2
import jinja2.ext
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2.sandbox import ImmutableSandboxedEnvironment

from agentkit.dialects.glm45 import STOP_TOKENS, format_assistant, render, render_continuation
from tests.shared import shared_file

Renderer = Callable[..., str]


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


@pytest.fixture(scope="module")
def jinja_render() -> Renderer:
    """The published template, rendered the way transformers does."""
    source = shared_file("glm45", "chat_template.jinja").read_text()
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = _tojson
    template = env.from_string(source)

    def run(
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]] | None = None,
        *,
        enable_thinking: bool = True,
        add_generation_prompt: bool = True,
    ) -> str:
        # SGLang turns JSON-text arguments into mappings before rendering; do the same here.
        prepared = copy.deepcopy(list(messages))
        for message in prepared:
            for call in message.get("tool_calls") or ():
                target = call.get("function") or call
                if isinstance(target.get("arguments"), str):
                    target["arguments"] = json.loads(target["arguments"])
        kwargs: dict[str, Any] = {"add_generation_prompt": add_generation_prompt}
        if not enable_thinking:
            kwargs["enable_thinking"] = False
        return template.render(messages=prepared, tools=tools, **kwargs)

    return run


WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}
_CONV: list[dict[str, Any]] = [
    {"role": "system", "content": "You are helpful."},
    {"role": "user", "content": "Weather in Beijing for 2 days?"},
    {
        "role": "assistant",
        "content": "Let me check.",
        "reasoning_content": "Need the tool.",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": {"city": "北京", "days": 2}},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 25}'},
    {"role": "tool", "tool_call_id": "call_2", "content": "second result"},
]
_SYS_HI: list[dict[str, Any]] = [
    {"role": "system", "content": "You are helpful."},
    {"role": "user", "content": "hi"},
]
# The cases of shared/glm45/render.py, in the order of render_examples.txt.
EXAMPLES: list[tuple[list[dict[str, Any]], list[dict[str, Any]] | None, dict[str, Any]]] = [
    (_SYS_HI, None, {}),
    (_SYS_HI, None, {"enable_thinking": False}),
    ([{"role": "user", "content": "hi"}], None, {"enable_thinking": True}),
    (_CONV, [WEATHER], {}),
    (
        [
            *_CONV,
            {"role": "assistant", "content": "It is 25C.", "reasoning_content": "Got it."},
            {"role": "user", "content": "thanks"},
        ],
        [WEATHER],
        {},
    ),
    (
        [
            {"role": "user", "content": "time?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"type": "function", "function": {"name": "now", "arguments": {}}}],
            },
        ],
        None,
        {"add_generation_prompt": False},
    ),
    (
        [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "<think>inline r</think>\nans"},
        ],
        None,
        {"add_generation_prompt": False},
    ),
]


def _published_renderings() -> list[str]:
    text = shared_file("glm45", "render_examples.txt").read_text()
    return [ast.literal_eval(m) for m in re.findall(r"^=====.*\n('.*')$", text, flags=re.M)]


def test_published_examples_byte_identical() -> None:
    expected = _published_renderings()
    assert len(expected) == len(EXAMPLES)
    for (messages, tools, kwargs), want in zip(EXAMPLES, expected, strict=True):
        assert render(messages, tools, **kwargs) == want


def test_examples_match_jinja(jinja_render: Renderer) -> None:
    for messages, tools, kwargs in EXAMPLES:
        assert render(messages, tools, **kwargs) == jinja_render(messages, tools, **kwargs)


HAND_WRITTEN: list[dict[str, Any]] = [
    {"role": "system", "content": "S"},
    {"role": "user", "content": "u1"},
    {"role": "assistant", "content": "a1", "reasoning_content": "r1"},
    {"role": "user", "content": [{"type": "text", "text": "u"}, "2"]},
    {
        "role": "assistant",
        "content": " c2 ",
        "reasoning_content": " r2\n",
        "tool_calls": [{"function": {"name": "f", "arguments": '{"x": "v", "n": [1, 2]}'}}],
    },
    {"role": "tool", "content": "t1"},
    {"role": "tool", "content": "t2"},
    {"role": "tool", "content": [{"output": "o"}]},
]
HAND_WRITTEN_PROMPT = (
    "[gMASK]<sop><|system|>\nS<|user|>\nu1<|assistant|>\n<think></think>\na1<|user|>\nu2"
    "<|assistant|>\n<think>r2</think>\nc2\n<tool_call>f\n<arg_key>x</arg_key>\n"
    "<arg_value>v</arg_value>\n<arg_key>n</arg_key>\n<arg_value>[1, 2]</arg_value>\n</tool_call>"
    "<|observation|>\n<tool_response>\nt1\n</tool_response>\n<tool_response>\nt2\n"
    "</tool_response><|observation|>\n<tool_response>\no\n</tool_response><|assistant|>"
)


def test_hand_written_rendering() -> None:
    """Runs without the shared template: history reasoning dropped, list content, runs of tool
    results, a list-form tool result opening its own <|observation|>."""
    assert render(HAND_WRITTEN) == HAND_WRITTEN_PROMPT
    no_think = render(HAND_WRITTEN, enable_thinking=False)
    assert no_think == (
        HAND_WRITTEN_PROMPT.replace("u1<", "u1/nothink<").replace("u2<", "u2/nothink<")
        + "\n<think></think>"
    )
    assert render(HAND_WRITTEN, add_generation_prompt=False) == HAND_WRITTEN_PROMPT.removesuffix(
        "<|assistant|>"
    )


def test_hand_written_rendering_matches_jinja(jinja_render: Renderer) -> None:
    assert jinja_render(HAND_WRITTEN) == HAND_WRITTEN_PROMPT


# -- generated conversations ----------------------------------------------------------------

_ALPHABET = st.sampled_from(
    ["a", "b", " ", "\n", "北", "é", '"', "{", "<think>", "</think>", "/nothink", "<", "\\n", "\t"]
)
texts = st.lists(_ALPHABET, max_size=8).map("".join)
parts = st.lists(
    st.one_of(
        texts,
        st.builds(lambda t: {"type": "text", "text": t}, texts),
        st.just({"type": "image_url", "image_url": {"url": "x"}}),
    ),
    max_size=3,
)
contents = st.one_of(texts, texts, parts)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-1000, 10**12)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6,
)
arguments = st.dictionaries(st.text("abk_", min_size=1, max_size=5), json_values, max_size=3)


@st.composite
def tool_calls(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(st.sampled_from(["get_weather", "now", "search_docs"]))
    args: Any = draw(arguments)
    if draw(st.booleans()):
        args = json.dumps(args, ensure_ascii=draw(st.booleans()))
    function = {"name": name, "arguments": args}
    if draw(st.booleans()):
        return {"id": "call_x", "type": "function", "function": function}
    return function


@st.composite
def assistant_messages(draw: st.DrawFn) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": draw(contents)}
    choice = draw(st.sampled_from(["none", "missing", "text"]))
    if choice == "text":
        message["reasoning_content"] = draw(texts)
    elif choice == "none":
        message["reasoning_content"] = None
    if draw(st.booleans()):
        message["tool_calls"] = draw(st.lists(tool_calls(), max_size=3))
    if draw(st.integers(0, 9)) == 0:
        del message["content"]  # the template prints nothing for a missing content
    return message


tool_messages = st.builds(
    lambda c: {"role": "tool", "tool_call_id": "call_x", "content": c},
    st.one_of(
        texts,
        texts,
        st.lists(st.one_of(texts, st.builds(lambda t: {"output": t}, texts)), max_size=3),
    ),
)
messages_strategy = st.lists(
    st.one_of(
        st.builds(lambda c: {"role": "system", "content": c}, contents),
        st.builds(lambda c: {"role": "user", "content": c}, contents),
        assistant_messages(),
        tool_messages,
    ),
    max_size=8,
)
tools_strategy: st.SearchStrategy[list[dict[str, Any]] | None] = st.one_of(
    st.none(),
    st.just([]),
    st.just([WEATHER]),
    st.just([WEATHER, {"type": "function", "function": {"name": "now", "parameters": {}}}]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    messages=messages_strategy,
    tools=tools_strategy,
    enable_thinking=st.booleans(),
    add_generation_prompt=st.booleans(),
)
def test_generated_conversations_match_jinja(
    jinja_render: Renderer,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None,
    enable_thinking: bool,
    add_generation_prompt: bool,
) -> None:
    kwargs = {"enable_thinking": enable_thinking, "add_generation_prompt": add_generation_prompt}
    assert render(messages, tools, **kwargs) == jinja_render(messages, tools, **kwargs)


# -- arguments given as JSON text -------------------------------------------------------------


def test_json_text_arguments_render_like_mappings() -> None:
    as_text = [
        {
            "role": "assistant",
            "tool_calls": [{"function": {"name": "f", "arguments": '{"x": [1, "a"]}'}}],
        }
    ]
    as_map = [
        {
            "role": "assistant",
            "tool_calls": [{"function": {"name": "f", "arguments": {"x": [1, "a"]}}}],
        }
    ]
    rendered = render(as_text, add_generation_prompt=False)
    assert rendered == render(as_map, add_generation_prompt=False)
    assert '<arg_key>x</arg_key>\n<arg_value>[1, "a"]</arg_value>' in rendered


@pytest.mark.parametrize("bad", ['{"x": ', "[1, 2]", "null"])
def test_invalid_json_arguments_raise_value_error(bad: str) -> None:
    messages = [
        {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": bad}}]}
    ]
    with pytest.raises(ValueError, match=r"function\.arguments must be"):
        render(messages)


# -- render_continuation ------------------------------------------------------------------------

typed_args = st.fixed_dictionaries(
    {}, optional={"city": texts, "days": st.integers(0, 30), "extra": json_values}
)


@st.composite
def histories(draw: st.DrawFn, thinking: bool) -> tuple[list[dict[str, Any]], str]:
    """A conversation ending with an assistant turn, and the raw text the model produced for it."""
    history: list[dict[str, Any]] = []
    if draw(st.booleans()):
        history.append({"role": "system", "content": draw(texts)})
    history.append({"role": "user", "content": draw(texts)})
    reasoning = draw(texts.filter(lambda t: "</think>" not in t)) if thinking else ""
    content = draw(texts.filter(lambda t: "</think>" not in t))
    calls = [("get_weather", a) for a in draw(st.lists(typed_args, max_size=2))]
    history.append(
        {
            "role": "assistant",
            "content": content,
            "reasoning_content": reasoning,
            "tool_calls": [{"function": {"name": n, "arguments": a}} for n, a in calls],
        }
    )
    return history, format_assistant(reasoning, content, calls, thinking=thinking)


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    results=st.lists(tool_messages, min_size=1, max_size=3),
    then_system=st.booleans(),
    stop=st.sampled_from([*STOP_TOKENS, None]),
    enable_thinking=st.booleans(),
)
def test_continuation_appends_like_a_full_render(
    data: st.DataObject,
    results: list[dict[str, Any]],
    then_system: bool,
    stop: str | None,
    enable_thinking: bool,
) -> None:
    history, raw = data.draw(histories(enable_thinking))
    new = results + ([{"role": "system", "content": "note"}] if then_system else [])
    kw = {"enable_thinking": enable_thinking}
    prefix = render(history[:-1], [WEATHER], **kw)
    full = render(history + new, [WEATHER], **kw)
    assert full.startswith(prefix + raw)  # the model's raw turn is the template's rendering
    continuation = render_continuation(new, after_stop=stop, **kw)
    if stop in ("<|observation|>", None):
        assert prefix + raw + (stop or "") + continuation == full
    else:  # a different stop token stays in the context; the rest is what the template adds
        assert continuation == full[len(prefix + raw) :]


def test_continuation_after_user_stop_does_not_repeat_user_token() -> None:
    history = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Hello!"},
    ]
    raw = format_assistant(None, "Hello!", [])
    new = [{"role": "user", "content": "how are you"}]
    context = render(history[:-1]) + raw + "<|user|>"
    assert context + render_continuation(new, after_stop="<|user|>") == render(history + new)


def test_continuation_rejects_unknown_stop() -> None:
    with pytest.raises(ValueError, match="after_stop"):
        render_continuation([], after_stop="<|assistant|>")
