"""The parsers measured side by side: agentkit's (whole text and streamed), the dialect as it
was at earlier git revisions, and SGLang's own glm45 parsers as its chat server runs them."""

from __future__ import annotations

import importlib
import logging
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentkit.dialects.glm45 import parse

from .corpus import TOOLS, Sample

ROOT = Path(__file__).resolve().parents[2]

WholeParser = Callable[[Sample], object]
StreamRunner = Callable[[Sample, list[str]], object]


def agentkit_whole(parse_fn: Callable[..., Any], tools: Any = TOOLS) -> WholeParser:
    def run(sample: Sample) -> object:
        return parse_fn(sample.text, tools, thinking=sample.thinking)

    return run


def agentkit_stream(parser_cls: Any, tools: Any = TOOLS) -> StreamRunner:
    """Streamed in the sample's chunks, building the final ``Parsed`` too."""

    def run(sample: Sample, chunks: list[str]) -> object:
        parser = parser_cls(tools, thinking=sample.thinking)
        feed = parser.feed
        for chunk in chunks:
            feed(chunk)
        parser.close()
        return parser.result()

    return run


def baseline_module(rev: str) -> Any:
    """The dialect package as it was at ``rev``, imported under a name of its own."""
    name = f"glm45_at_{rev}"
    target = Path(tempfile.mkdtemp(prefix="glm45-baseline-")) / name
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
    return importlib.import_module(name)


def check_baseline_agrees(baseline: Any, samples: list[Sample]) -> None:
    """The parser now must give exactly what the baseline gave, on every sample."""
    for sample in samples:
        new = parse(sample.text, TOOLS, thinking=sample.thinking)
        old = baseline.parse(sample.text, TOOLS, thinking=sample.thinking)
        if new.model_dump() != old.model_dump():
            raise SystemExit(f"parse differs from the baseline on sample {sample.kind!r}")


def sglang_version() -> str | None:
    try:
        return str(importlib.import_module("sglang").__version__)
    except Exception:  # any import failure means: no peer here
        return None


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
