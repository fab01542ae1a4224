"""Speed of the GLM-4.5 dialect: render (vs the published template through jinja2), whole-text
``parse`` and the streaming parser on a corpus of 600 completions, side by side with SGLang's
own glm45 parsers (its reasoning parser plus ``Glm4MoeDetector``) in the same run.

Run: ``python benchmarks/bench_glm45_dialect.py [--repeats N] [--baseline REV]``.

- SGLang is imported from the installed ``sglang`` package (``pip install --no-deps sglang``
  plus the few pure-Python modules its parser imports need); without it that peer is skipped.
- ``--baseline REV`` also measures the dialect as it was at git revision ``REV`` (extracted
  into a temporary directory), so before and after come from one run on the same machine load.
- The jinja2 comparison needs ``../shared/glm45/chat_template.jinja`` (skipped if absent).

Times are CPU time (``time.process_time``, best of N repeats): the machine is shared, wall time
is noisy. The load average is printed beside the figures.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentkit.dialects.glm45 import (
    STOP_TOKENS,
    StreamParser,
    ToolSchemas,
    format_assistant,
    parse,
    render,
)

ROOT = Path(__file__).resolve().parents[1]

# -- corpus -------------------------------------------------------------------------------------


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


WholeParser = Callable[[Sample], object]
StreamRunner = Callable[[Sample, list[str]], object]


def best_cpu_s(fn: Callable[[], object], repeats: int) -> float:
    return min(timeit.repeat(fn, number=1, repeat=repeats, timer=time.process_time))


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min) / {five:.1f} (5 min), {os.cpu_count()} CPUs"


# -- contenders ---------------------------------------------------------------------------------


def agentkit_whole(parse_fn: Callable[..., Any], tools: Any = TOOLS) -> WholeParser:
    def run(sample: Sample) -> object:
        return parse_fn(sample.text, tools, thinking=sample.thinking)

    return run


def agentkit_stream(parser_cls: Any, tools: Any = TOOLS) -> StreamRunner:
    def run(sample: Sample, chunks: list[str]) -> object:
        parser = parser_cls(tools, thinking=sample.thinking)
        feed = parser.feed
        for chunk in chunks:
            feed(chunk)
        parser.close()
        return parser.result()

    return run


def baseline_module(rev: str) -> Any:
    """The dialect package as it was at ``rev``, imported under another name."""
    target = Path(tempfile.mkdtemp(prefix="glm45-baseline-")) / "glm45_baseline"
    target.mkdir()
    listing = subprocess.run(
        ["git", "-C", str(ROOT), "ls-tree", "--name-only", rev, "agentkit/dialects/glm45/"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    for path in listing:
        if path.endswith(".py"):
            source = subprocess.run(
                ["git", "-C", str(ROOT), "show", f"{rev}:{path}"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            (target / Path(path).name).write_text(source)
    sys.path.insert(0, str(target.parent))
    return importlib.import_module("glm45_baseline")


def sglang_contenders() -> tuple[WholeParser, StreamRunner] | str:
    """SGLang's whole-text and streaming glm45 pipeline (reasoning parser, then the tool-call
    detector on the normal text, as its chat server runs them), or why it is unavailable."""
    try:
        protocol = importlib.import_module("sglang.srt.entrypoints.openai.protocol")
        detectors = importlib.import_module("sglang.srt.function_call.glm4_moe_detector")
        reasoning = importlib.import_module("sglang.srt.parser.reasoning_parser")
    except Exception as error:  # any import failure means: no peer here
        return f"{type(error).__name__}: {error}"
    # it logs a warning for each call to an unknown tool; that would flood the figures
    logging.getLogger("sglang").setLevel(logging.ERROR)
    Glm4MoeDetector, ReasoningParser = detectors.Glm4MoeDetector, reasoning.ReasoningParser
    tools = [protocol.Tool.model_validate(tool) for tool in TOOLS]

    def whole(sample: Sample) -> object:
        reasoning, normal = ReasoningParser("glm45", stream_reasoning=False).parse_non_stream(
            sample.peer_text
        )
        detector = Glm4MoeDetector()
        if normal and detector.has_tool_call(normal):
            return reasoning, detector.detect_and_parse(normal, tools)
        return reasoning, normal

    def stream(sample: Sample, chunks: list[str]) -> object:
        reasoning_parser = ReasoningParser("glm45", stream_reasoning=True)
        detector = Glm4MoeDetector()
        out = []
        for chunk in chunks:
            _, normal = reasoning_parser.parse_stream_chunk(chunk)
            if normal:
                out.append(detector.parse_streaming_increment(normal, tools))
        _, normal = reasoning_parser.parse_stream_end()
        if normal:
            out.append(detector.parse_streaming_increment(normal, tools))
        return out

    return whole, stream


# -- measurements -------------------------------------------------------------------------------


def interleaved(jobs: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best CPU seconds of each job, the jobs taking turns in every repeat (so a burst of
    load on the shared machine hits all contenders alike)."""
    best = dict.fromkeys(jobs, float("inf"))
    for _ in range(repeats):
        for name, job in jobs.items():
            best[name] = min(best[name], best_cpu_s(job, 1))
    return best


def _whole_job(run: WholeParser, samples: list[Sample]) -> Callable[[], object]:
    return lambda: [run(sample) for sample in samples]


def _stream_job(run: StreamRunner, pairs: list[tuple[Sample, list[str]]]) -> Callable[[], object]:
    return lambda: [run(sample, pieces) for sample, pieces in pairs]


def whole_text(contenders: dict[str, WholeParser], samples: list[Sample], repeats: int) -> None:
    total = sum(len(s.text.encode()) for s in samples)
    jobs = {name: _whole_job(run, samples) for name, run in contenders.items()}
    figures = interleaved(jobs, repeats)
    for name, seconds in figures.items():
        print(
            f"  {name:<22} {len(samples) / seconds:>10,.0f} calls/s "
            f"{total / seconds / 1e6:>8.1f} MB/s  ({seconds * 1e3:.1f} ms)"
        )
    ratio_line(figures)


def streaming(
    contenders: dict[str, StreamRunner],
    samples: list[Sample],
    chunked: list[list[str]],
    repeats: int,
) -> None:
    total = sum(len(s.text.encode()) for s in samples)
    chunks = sum(len(c) for c in chunked)
    pairs = list(zip(samples, chunked, strict=True))
    jobs = {name: _stream_job(run, pairs) for name, run in contenders.items()}
    figures = interleaved(jobs, repeats)
    for name, seconds in figures.items():
        print(
            f"  {name:<22} {seconds / chunks * 1e6:>8.2f} us/chunk "
            f"{total / seconds / 1e6:>8.1f} MB/s  ({seconds * 1e3:.1f} ms)"
        )
    ratio_line(figures)


def ratio_line(figures: dict[str, float]) -> None:
    ours = [name for name in figures if name.startswith("agentkit") and "@" not in name]
    for mine in ours:
        others = ", ".join(
            f"{figures[name] / figures[mine]:.2f}x vs {name}"
            for name in figures
            if name not in ours
        )
        if others:
            print(f"  -> {mine} speed: {others}")


def check_baseline_agrees(baseline: Any, samples: list[Sample]) -> None:
    """The new parser must give exactly what the baseline gave, on every sample."""
    for sample in samples:
        new = parse(sample.text, TOOLS, thinking=sample.thinking)
        old = baseline.parse(sample.text, TOOLS, thinking=sample.thinking)
        if new.model_dump() != old.model_dump():
            raise SystemExit(f"parse differs from the baseline on sample {sample.kind!r}")


def bench_parsers(repeats: int, baseline_rev: str | None) -> None:
    samples = corpus()
    groups = {
        "small": [s for s in samples if not s.large],
        "large": [s for s in samples if s.large],
    }
    # "agentkit" gets the tool list as dicts, as a caller would pass it; "compiled" gets
    # ToolSchemas.compiled(TOOLS), built once, as SGLang's parsers get Tool objects built once
    compiled = ToolSchemas.compiled(TOOLS)
    whole: dict[str, WholeParser] = {
        "agentkit": agentkit_whole(parse),
        "agentkit, compiled": agentkit_whole(parse, compiled),
    }
    stream: dict[str, StreamRunner] = {
        "agentkit": agentkit_stream(StreamParser),
        "agentkit, compiled": agentkit_stream(StreamParser, compiled),
    }
    if baseline_rev:
        baseline = baseline_module(baseline_rev)
        check_baseline_agrees(baseline, samples)
        print(f"baseline {baseline_rev}: same results as now on all {len(samples)} completions")
        whole[f"agentkit@{baseline_rev}"] = agentkit_whole(baseline.parse)
        stream[f"agentkit@{baseline_rev}"] = agentkit_stream(baseline.StreamParser)
    peers = sglang_contenders()
    if isinstance(peers, str):
        print(f"SGLang peer skipped (its glm45 parsers cannot be imported here): {peers}")
    else:
        version = importlib.import_module("sglang").__version__
        whole[f"sglang {version}"], stream[f"sglang {version}"] = peers
    kinds: dict[str, int] = {}
    for sample in samples:
        kinds[sample.kind] = kinds.get(sample.kind, 0) + 1
    print(f"corpus: {len(samples)} completions, " + ", ".join(f"{k} {n}" for k, n in kinds.items()))
    print(load())
    for label, group in groups.items():
        size = sum(len(s.text.encode()) for s in group)
        print(f"whole text, {label}: {len(group)} completions, {size / 1e3:,.0f} KB")
        whole_text(whole, group, repeats)
    for label, group in groups.items():
        chunked = [s.chunks() for s in group]
        count = sum(len(c) for c in chunked)
        print(f"streaming, {label}: {len(group)} completions in {count:,} chunks of 3-8 chars")
        streaming(stream, group, chunked, repeats)
    print(load())


# -- render -------------------------------------------------------------------------------------


def conversation(turns: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are a careful agent."}]
    for turn in range(turns):
        messages.append({"role": "user", "content": f"Question {turn}: find the relevant docs."})
        call = {"name": "search", "arguments": json.dumps({"query": "agent docs", "limit": 5})}
        messages.append(
            {
                "role": "assistant",
                "content": "Let me search.",
                "reasoning_content": "I should call the search tool with a small limit.",
                "tool_calls": [{"id": "call_1", "type": "function", "function": call}],
            }
        )
        messages.append({"role": "tool", "tool_call_id": "call_1", "content": "result " * 40})
        messages.append({"role": "assistant", "content": "Here is what I found. " * 5})
    return messages


def jinja_renderer() -> Callable[[list[dict[str, Any]]], str] | None:
    shared = Path(os.environ.get("AGENTKIT_SHARED_DIR", ROOT.parent / "shared"))
    path = shared / "glm45" / "chat_template.jinja"
    if not path.exists():
        return None
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = lambda v, ensure_ascii=False, **_: json.dumps(
        v, ensure_ascii=ensure_ascii
    )
    template = env.from_string(path.read_text())

    def run(messages: list[dict[str, Any]]) -> str:
        prepared = json.loads(json.dumps(messages))
        for m in prepared:
            for c in m.get("tool_calls") or ():
                c["function"]["arguments"] = json.loads(c["function"]["arguments"])
        return template.render(messages=prepared, tools=TOOLS, add_generation_prompt=True)

    return run


def bench_render(repeats: int) -> None:
    messages = conversation(10)  # 41 messages
    ours = best_cpu_s(lambda: [render(messages, TOOLS) for _ in range(100)], repeats) * 1e4
    print(f"render, 41 messages + {len(TOOLS)} tools: {ours:.0f} us/call")
    jinja = jinja_renderer()
    if jinja is None:
        print("  jinja2 template skipped: ../shared/glm45/chat_template.jinja is absent")
        return
    assert jinja(messages) == render(messages, TOOLS)
    theirs = best_cpu_s(lambda: [jinja(messages) for _ in range(20)], repeats) * 5e4
    print(f"  jinja2 template (same output): {theirs:.0f} us/call, ratio {theirs / ours:.1f}x")


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--repeats", type=int, default=5, help="best of N (default 5)")
    options.add_argument("--baseline", help="also measure the dialect at this git revision")
    options.add_argument("--no-render", action="store_true", help="skip the render benchmark")
    args = options.parse_args()
    print(f"Python {sys.version.split()[0]}, best of {args.repeats}, CPU time")
    if not args.no_render:
        bench_render(args.repeats)
    bench_parsers(args.repeats, args.baseline)


if __name__ == "__main__":
    main()
