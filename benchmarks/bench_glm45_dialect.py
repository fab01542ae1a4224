"""Speed of the GLM-4.5 dialect: render (vs the published template through jinja2), whole-text
``parse`` and the streaming parser on a corpus of 600 completions, side by side with SGLang's
own glm45 parsers (its reasoning parser plus ``Glm4MoeDetector``) in the same run.

Run: ``python benchmarks/bench_glm45_dialect.py [--repeats N] [--baseline REV ...]``.

- SGLang is imported from the installed ``sglang`` package (``pip install --no-deps sglang``
  plus the few pure-Python modules its parser imports need); without it that peer is skipped.
- ``--baseline REV`` (repeatable) also measures the dialect as it was at git revision ``REV``
  (extracted into a temporary directory), so before and after come from one run on the same
  machine load; each baseline must first give the same results as now on the whole corpus.
- The jinja2 comparison needs ``../shared/glm45/chat_template.jinja`` (skipped if absent).

Times are CPU time (``time.process_time``, best of N repeats, contenders taking turns): the
machine is shared, wall time is noisy. The load average is printed beside the figures and
written with them to ``benchmarks/results/glm45-dialect-<date>.json``.

The parts: ``glm45_dialect/corpus.py`` (the completions and tools), ``contenders.py``,
``measure.py``, ``report.py`` and ``render.py``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agentkit.dialects.glm45 import StreamParser, ToolSchemas, parse
from benchmarks.glm45_dialect.contenders import (
    ROOT,
    StreamRunner,
    WholeParser,
    agentkit_stream,
    agentkit_whole,
    baseline_module,
    check_baseline_agrees,
    sglang_contenders,
    sglang_version,
)
from benchmarks.glm45_dialect.corpus import TOOLS, Sample, corpus
from benchmarks.glm45_dialect.measure import Group, load_average, streaming, whole_text
from benchmarks.glm45_dialect.render import bench_render
from benchmarks.glm45_dialect.report import lines, row

RESULTS_DIR = ROOT / "benchmarks" / "results"


def contenders(
    baselines: list[str], samples: list[Sample]
) -> tuple[dict[str, WholeParser], dict[str, StreamRunner]]:
    """agentkit now (tools as dicts, as a caller passes them, and compiled once, as SGLang's
    parsers get ``Tool`` objects built once), each baseline, and SGLang when installed."""
    compiled = ToolSchemas.compiled(TOOLS)
    whole: dict[str, WholeParser] = {
        "agentkit": agentkit_whole(parse),
        "agentkit, compiled": agentkit_whole(parse, compiled),
    }
    stream: dict[str, StreamRunner] = {
        "agentkit": agentkit_stream(StreamParser),
        "agentkit, compiled": agentkit_stream(StreamParser, compiled),
    }
    for rev in baselines:
        baseline = baseline_module(rev)
        check_baseline_agrees(baseline, samples)
        print(f"baseline {rev}: same results as now on all {len(samples)} completions")
        whole[f"agentkit@{rev}"] = agentkit_whole(baseline.parse)
        stream[f"agentkit@{rev}"] = agentkit_stream(baseline.StreamParser)
    peers = sglang_contenders()
    if isinstance(peers, str):
        print(f"SGLang peer skipped (its glm45 parsers cannot be imported here): {peers}")
    else:
        name = f"sglang {sglang_version()}"
        whole[name], stream[name] = peers
    return whole, stream


def bench_parsers(repeats: int, baselines: list[str]) -> list[Group]:
    samples = corpus()
    whole, stream = contenders(baselines, samples)
    groups = {
        "small": [s for s in samples if not s.large],
        "large": [s for s in samples if s.large],
    }
    kinds: dict[str, int] = {}
    for sample in samples:
        kinds[sample.kind] = kinds.get(sample.kind, 0) + 1
    print(f"corpus: {len(samples)} completions, " + ", ".join(f"{k} {n}" for k, n in kinds.items()))
    measured = []
    for label, group in groups.items():
        measured.append(whole_text(f"whole text, {label}", whole, group, repeats))
    for label, group in groups.items():
        measured.append(streaming(f"streaming, {label}", stream, group, repeats))
    for figures in measured:
        size = f"{figures.completions} completions, {figures.size_bytes / 1e3:,.0f} KB"
        chunks = "" if figures.chunks is None else f" in {figures.chunks:,} chunks of 3-8 chars"
        print(f"{figures.label}: {size}{chunks}")
        print("\n".join(lines(figures)))
    return measured


def main() -> None:
    options = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    options.add_argument("--repeats", type=int, default=5, help="best of N (default 5)")
    options.add_argument(
        "--baseline", action="append", default=[], help="also measure the dialect at this rev"
    )
    options.add_argument("--no-render", action="store_true", help="skip the render benchmark")
    options.add_argument("--out", type=Path, default=None, help="JSON path (default: results/)")
    args = options.parse_args()
    print(f"Python {sys.version.split()[0]}, best of {args.repeats}, CPU time")
    load_before = load_average()
    print(f"load average {load_before[0]:.1f} (1 min) / {load_before[1]:.1f} (5 min)")
    rendered = None if args.no_render else bench_render(args.repeats)
    groups = bench_parsers(args.repeats, args.baseline)
    load_after = load_average()
    print(f"load average {load_after[0]:.1f} (1 min) / {load_after[1]:.1f} (5 min)")
    today = dt.date.today().isoformat()
    report: dict[str, Any] = {
        "date": today,
        "command": " ".join(["python", "benchmarks/bench_glm45_dialect.py", *sys.argv[1:]]),
        "python": platform.python_version(),
        "interpreter": sys.executable,
        "sglang": sglang_version(),
        "repeats": args.repeats,
        "baselines": args.baseline,
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in load_after],
        "render_us": rendered and {k: v and round(v, 1) for k, v in rendered.items()},
        "groups": [row(group) for group in groups],
    }
    out = args.out or RESULTS_DIR / f"glm45-dialect-{today}.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"written: {out}")


if __name__ == "__main__":
    main()
