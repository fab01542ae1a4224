"""The corpus: 600 GLM-4.5 completions of mixed shapes, generated deterministically (the same
on every run), as SGLang's ``/generate`` returns them (stop token kept), and the tools offered."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from agentkit.dialects.glm45 import STOP_TOKENS, format_assistant


def _tool(name: str, properties: dict[str, Any]) -> dict[str, Any]:
    parameters = {"type": "object", "properties": properties, "required": list(properties)[:1]}
    return {
        "type": "function",
        "function": {"name": name, "description": f"The {name} tool.", "parameters": parameters},
    }


TOOLS: list[dict[str, Any]] = [
    _tool(
        "search",
        {"query": {"type": "string"}, "limit": {"type": "integer"}, "filters": {"type": "object"}},
    ),
    _tool("write_file", {"path": {"type": "string"}, "content": {"type": "string"}}),
    _tool("calculate", {"expression": {"type": "string"}, "precision": {"type": "integer"}}),
    _tool(
        "configure",
        {
            "enabled": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "ratio": {"type": "number"},
            "mode": {"enum": ["fast", "slow"]},
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        },
    ),
    _tool("get_time", {}),
    *(
        _tool(f"tool_{i}", {"value": {"type": "string"}, "n": {"type": "integer"}})
        for i in range(3)
    ),
]

_TEXT = (
    "the agent should check which file holds the config and then run the tests again "
    "before it answers because a failing step means 42 values < 100 are wrong; "
    '北京 naïve café {json: [1, 2]} a&b x<y "quoted" path/to/file.py'
)
_WORDS = _TEXT.split()


@dataclass(frozen=True, slots=True)
class Sample:
    """One completion as SGLang returns it (stop token kept), and how it is parsed."""

    kind: str
    text: str
    thinking: bool
    large: bool
    seed: int

    @property
    def peer_text(self) -> str:
        """The text SGLang's chat server hands its parsers (stop token trimmed)."""
        for token in STOP_TOKENS:
            if self.text.endswith(token):
                return self.text[: -len(token)]
        return self.text

    def chunks(self) -> list[str]:
        """Token-sized pieces of 3-8 characters (deterministic per sample)."""
        rng = random.Random(self.seed)
        out, at = [], 0
        while at < len(self.text):
            step = rng.randint(3, 8)
            out.append(self.text[at : at + step])
            at += step
        return out


def _prose(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words))


def _call(rng: random.Random) -> tuple[str, dict[str, Any]]:
    choice = rng.randrange(4)
    if choice == 0:
        return "search", {"query": _prose(rng, 4), "limit": rng.randint(1, 50)}
    if choice == 1:
        return "calculate", {"expression": f"{rng.randint(1, 999)} * {rng.randint(1, 99)}"}
    if choice == 2:
        return "get_time", {}
    return f"tool_{rng.randrange(3)}", {"value": _prose(rng, 3), "n": rng.randint(0, 9)}


def _typed_call(rng: random.Random) -> tuple[str, dict[str, Any]]:
    if rng.random() < 0.5:
        filters = {"lang": "en", "year": rng.randint(2000, 2026), "tags": ["a", "b"]}
        return "search", {"query": _prose(rng, 3), "limit": 10, "filters": filters}
    arguments = {
        "enabled": rng.random() < 0.5,
        "tags": [_prose(rng, 1) for _ in range(rng.randint(0, 4))],
        "ratio": round(rng.random(), 3),
        "mode": rng.choice(["fast", "slow"]),
        "note": None,
    }
    return "configure", arguments


def _large(rng: random.Random) -> str:
    size = rng.randint(10_000, 100_000)
    words = size // 6
    shape = rng.randrange(3)
    if shape == 0:  # long reasoning, short answer
        return format_assistant(_prose(rng, words), "Done.", []) + "<|user|>"
    if shape == 1:  # long final answer
        return format_assistant(_prose(rng, 20), _prose(rng, words), []) + "<|user|>"
    content = "\n".join(_prose(rng, 12) for _ in range(words // 12))  # a file written by a call
    call = ("write_file", {"path": "out/report.md", "content": content})
    return format_assistant(_prose(rng, 30), "Writing it.", [call]) + "<|observation|>"


_MALFORMED = (
    "<tool_call>search\n<arg_key>query</arg_key>\n<arg_value>cut off here",
    "<tool_call>delete_everything\n<arg_key>path</arg_key>\n<arg_value>/</arg_value>\n</tool_call>",
    "<tool_call>search<arg_key>query</arg_key><arg_value>x</arg_value></tool_call>",
    "<tool_call>search\n<arg_key>limit</arg_key>\n<arg_value>ten</arg_value>\n</tool_call>",
    "<tool_call>search\n<arg_key>query</arg_key>\n<arg_value>a</arg_value>\n<arg_key>query"
    "</arg_key>\n<arg_value>b</arg_value>\n</tool_call>",
    "<tool_call>get_time\n</tool_call>\nAnd some text after the call.",
    "<tool_call>search\nstray words<arg_key>query</arg_key>\n<arg_value>q</arg_value>\n"
    "</tool_call>",
    "<tool_call>search\n<arg_key>query</arg_key>\n</tool_call>",
)


def _malformed(rng: random.Random) -> tuple[str, bool]:
    if rng.random() < 0.2:  # no </think>, or no <think> at all with thinking on
        if rng.random() < 0.5:
            return "\n<think>" + _prose(rng, 30), True
        return _prose(rng, 20) + "<|user|>", True
    markup = rng.choice(_MALFORMED)
    return f"\n<think>{_prose(rng, 15)}</think>\n{_prose(rng, 5)}\n{markup}<|observation|>", True


def _sample(kind: str, rng: random.Random) -> tuple[str, bool]:
    if kind == "reasoning only":
        return format_assistant(_prose(rng, rng.randint(5, 80)), "", []) + "<|user|>", True
    if kind == "answer":
        text = format_assistant(_prose(rng, rng.randint(5, 60)), _prose(rng, 40), [])
        return text + "<|user|>", True
    if kind == "text only":
        return format_assistant(None, _prose(rng, rng.randint(3, 80)), [], thinking=False), False
    if kind == "one call":
        text = format_assistant(_prose(rng, 25), _prose(rng, 6), [_call(rng)])
        return text + "<|observation|>", True
    if kind == "several calls":
        calls = [_call(rng) for _ in range(rng.randint(2, 5))]
        return format_assistant(_prose(rng, 25), "", calls) + "<|observation|>", True
    if kind == "typed arguments":
        calls = [_typed_call(rng) for _ in range(rng.randint(1, 2))]
        return format_assistant(_prose(rng, 20), "", calls) + "<|observation|>", True
    if kind == "large":
        return _large(rng), True
    return _malformed(rng)


_MIX = (
    ("reasoning only", 60),
    ("answer", 90),
    ("text only", 60),
    ("one call", 150),
    ("several calls", 90),
    ("typed arguments", 60),
    ("large", 30),
    ("malformed", 60),
)


def corpus(seed: int = 17) -> list[Sample]:
    """600 completions of mixed shapes, the same on every run."""
    rng = random.Random(seed)
    samples = []
    for kind, count in _MIX:
        for _ in range(count):
            text, thinking = _sample(kind, rng)
            samples.append(Sample(kind, text, thinking, kind == "large", rng.randrange(1 << 30)))
    return samples
