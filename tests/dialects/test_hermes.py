"""The Hermes / Qwen dialect: rendering ChatML prompts and parsing ``<tool_call>{json}`` output."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentkit.dialects import hermes

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                "required": ["city"],
            },
        },
    },
    {"type": "function", "function": {"name": "now", "parameters": {"type": "object"}}},
]


def test_parses_calls_content_and_reasoning() -> None:
    text = (
        "<think>\nNeed the weather.\n</think>\n\nLet me check.\n"
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "北京", "days": 2}}\n</tool_call>\n'
        '<tool_call>\n{"name": "now", "arguments": {}}\n</tool_call><|im_end|>'
    )
    parsed = hermes.parse(text, TOOLS)
    assert parsed.reasoning == "Need the weather."
    assert parsed.content == "Let me check."
    assert [(c.index, c.name, c.arguments) for c in parsed.tool_calls] == [
        (0, "get_weather", {"city": "北京", "days": 2}),
        (1, "now", {}),
    ]
    assert parsed.tool_calls[1].raw.startswith("<tool_call>")
    assert parsed.problems == []
    assert parsed.stop == "<|im_end|>"


def test_plain_answer() -> None:
    parsed = hermes.parse("It is sunny in Paris.", TOOLS)
    assert parsed.content == "It is sunny in Paris."
    assert parsed.tool_calls == []
    assert parsed.reasoning is None
    assert parsed.stop is None


def test_arguments_as_json_text_and_parameters_key() -> None:
    text = (
        '<tool_call>{"name": "get_weather", "arguments": "{\\"city\\": \\"Oslo\\"}"}</tool_call>'
        '<tool_call>{"name": "now", "parameters": null}</tool_call>'
    )
    parsed = hermes.parse(text, TOOLS)
    assert [(c.name, c.arguments) for c in parsed.tool_calls] == [
        ("get_weather", {"city": "Oslo"}),
        ("now", {}),
    ]


def test_malformed_call_is_kept_as_content_and_reported() -> None:
    text = 'Sure.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": }\n</tool_call>'
    parsed = hermes.parse(text, TOOLS)
    assert parsed.tool_calls == []
    assert '{"city": }' in parsed.content
    assert parsed.content.startswith("Sure.")
    assert [p.kind for p in parsed.problems] == ["malformed_arguments"]


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ('{"arguments": {}}', "missing_tool_name"),
        ('{"name": "now", "arguments": [1]}', "malformed_arguments"),
        ('{"name": "now", "arguments": "{oops"}', "malformed_arguments"),
        ('["now"]', "malformed_arguments"),
        ('{"name": "now"} trailing', "malformed_arguments"),
    ],
)
def test_bad_blocks(body: str, kind: str) -> None:
    parsed = hermes.parse(f"<tool_call>{body}</tool_call>", TOOLS)
    assert parsed.tool_calls == []
    assert [p.kind for p in parsed.problems] == [kind]
    assert body in parsed.content


def test_unknown_tool_is_returned_and_reported() -> None:
    parsed = hermes.parse('<tool_call>{"name": "launch", "arguments": {}}</tool_call>', TOOLS)
    assert [c.name for c in parsed.tool_calls] == ["launch"]
    assert [p.kind for p in parsed.problems] == ["unknown_tool"]


def test_truncated_output() -> None:
    complete = hermes.parse('<tool_call>\n{"name": "now", "arguments": {}}', TOOLS)
    assert [c.name for c in complete.tool_calls] == ["now"]
    assert [p.kind for p in complete.problems] == ["unclosed_tool_call"]
    cut = hermes.parse('<tool_call>\n{"name": "now", "argu', TOOLS)
    assert cut.tool_calls == []
    assert cut.content.endswith('"argu')
    assert [p.kind for p in cut.problems] == ["unclosed_tool_call"]
    thinking = hermes.parse("<think>still thinking", TOOLS)
    assert thinking.reasoning == "still thinking"
    assert [p.kind for p in thinking.problems] == ["unclosed_think"]


def test_text_after_calls_is_kept() -> None:
    text = '<tool_call>{"name": "now", "arguments": {}}</tool_call>\nDone soon.'
    parsed = hermes.parse(text, TOOLS)
    assert parsed.content == "Done soon."
    assert [p.kind for p in parsed.problems] == ["text_after_tool_calls"]


def test_reasoning_closed_only_when_prompt_opened_it() -> None:
    parsed = hermes.parse("plan it</think>\n\nAnswer.", TOOLS)
    assert parsed.reasoning == "plan it"
    assert parsed.content == "Answer."


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "get_weather", "arguments": {"city": "Paris"}}',
        '```json\n{\n  "name": "get_weather",\n  "arguments": {"city": "Paris"}\n}\n```',
    ],
)
def test_lenient_mode_takes_bare_json_calls(text: str) -> None:
    strict = hermes.parse(text, TOOLS)
    assert strict.tool_calls == []
    lenient = hermes.parse(text, TOOLS, lenient=True)
    assert [(c.name, c.arguments) for c in lenient.tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    assert lenient.content == ""
    undeclared = hermes.parse(text.replace("get_weather", "other"), TOOLS, lenient=True)
    assert undeclared.tool_calls == []


_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(
    content=st.text(max_size=40).filter(lambda s: "<tool_call>" not in s and "think>" not in s),
    calls=st.lists(
        st.tuples(
            st.sampled_from(["get_weather", "now"]),
            st.dictionaries(st.text(min_size=1, max_size=8), _values, max_size=3),
        ),
        max_size=3,
    ),
)
def test_format_then_parse_round_trips(
    content: str, calls: list[tuple[str, dict[str, Any]]]
) -> None:
    text = hermes.format_assistant(None, content, calls)
    parsed = hermes.parse(text, TOOLS)
    assert [(c.name, c.arguments) for c in parsed.tool_calls] == calls
    if not any(stop in content for stop in hermes.STOP_STRINGS):
        assert parsed.content == content.strip()
        assert parsed.problems == []


def test_render_matches_the_qwen_layout() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": "",
            "reasoning_content": "use the tool",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": "22C"},
    ]
    prompt = hermes.render(messages, TOOLS)
    tool_lines = "\n".join(json.dumps(t, ensure_ascii=False) for t in TOOLS)
    expected = (
        "<|im_start|>system\nYou are helpful.\n\n# Tools\n\nYou may call one or more functions to "
        "assist with the user query.\n\nYou are provided with function signatures within "
        f"<tools></tools> XML tags:\n<tools>\n{tool_lines}\n</tools>\n\nFor each function call, "
        "return a json object with function name and arguments within <tool_call></tool_call> "
        'XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n'
        "</tool_call><|im_end|>\n"
        "<|im_start|>user\nWeather in Paris?<|im_end|>\n"
        "<|im_start|>assistant\n<think>\nuse the tool\n</think>\n\n<tool_call>\n"
        '{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>\n'
        "<|im_start|>user\n<tool_response>\nsunny\n</tool_response>\n<tool_response>\n22C\n"
        "</tool_response><|im_end|>\n<|im_start|>assistant\n"
    )
    assert prompt == expected


def test_render_without_tools_and_history_reasoning_dropped() -> None:
    messages = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b", "reasoning_content": "old thoughts"},
        {"role": "user", "content": "c"},
    ]
    prompt = hermes.render(messages, add_generation_prompt=False)
    assert prompt == (
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\na<|im_end|>\n"
        "<|im_start|>assistant\nb<|im_end|>\n<|im_start|>user\nc<|im_end|>\n"
    )


def test_render_rejects_bad_messages() -> None:
    with pytest.raises(ValueError, match="unknown message role"):
        hermes.render([{"role": "robot", "content": "x"}])
    with pytest.raises(ValueError, match="JSON object"):
        hermes.render(
            [{"role": "assistant", "tool_calls": [{"function": {"name": "x", "arguments": "[1]"}}]}]
        )
