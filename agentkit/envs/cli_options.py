"""The flags of ``agentkit tau`` (one annotated type per flag, so the commands' signatures stay
short) and :class:`RunOptions`, what ``agentkit tau run`` passes on to a benchmark's runner."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from .registry import BENCHMARKS, DOMAINS, TAU2_DOMAINS

DomainOpt = Annotated[
    str,
    typer.Option(
        "--domain",
        help=f"tau: {', '.join(DOMAINS)}; tau2: {', '.join(TAU2_DOMAINS)}.",
    ),
]
DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="The domain's data folder: tau-bench's (not needed for demo) or tau2's.",
    ),
]
BenchmarkOpt = Annotated[str, typer.Option("--benchmark", help=f"One of: {', '.join(BENCHMARKS)}.")]

# --- agentkit tau run ---------------------------------------------------------------------------
TasksOpt = Annotated[str, typer.Option(help="Task indices: '0-9', '1,4,7', 'all'.")]
TrialsOpt = Annotated[int, typer.Option(min=1, help="Trials per task (pass^1..pass^trials).")]
ConcurrencyOpt = Annotated[int, typer.Option(min=1, help="Episodes at a time.")]
SplitOpt = Annotated[str, typer.Option(help="Task split file: tasks_<split>.json|py.")]
BaseUrlOpt = Annotated[
    list[str] | None,
    typer.Option("--base-url", help="Agent's SGLang URL (repeat for several); $AGENTKIT_BASE_URL."),
]
UserBaseUrlOpt = Annotated[
    list[str] | None,
    typer.Option("--user-base-url", help="User simulator's SGLang URL (default: the agent's)."),
]
ModeOpt = Annotated[str, typer.Option(help="chat (/v1/chat/completions) or tokens (/generate).")]
TokenizerOpt = Annotated[Path | None, typer.Option(help="Tokenizer for token mode.")]
ModelOpt = Annotated[str, typer.Option(help="Agent's served model name.")]
UserModelOpt = Annotated[str, typer.Option(help="User simulator's served model name.")]
TemperatureOpt = Annotated[float, typer.Option(help="Agent temperature (tau-bench: 0).")]
ThinkingOpt = Annotated[bool, typer.Option(help="Let the agent think (GLM-4.5).")]
MaxStepsOpt = Annotated[
    int | None,
    typer.Option(help="Model calls per episode before reward 0 (tau: 30, tau2: 100)."),
]
OneCallPerTurnOpt = Annotated[
    bool,
    typer.Option(
        "--one-call-per-turn/--all-calls-per-turn",
        help="tau-bench runs only the first tool call of a model turn (default).",
    ),
]
OutOpt = Annotated[
    Path | None, typer.Option(help="Folder for trajectories.jsonl and results.json.")
]
ScriptedGoldOpt = Annotated[
    bool, typer.Option(help="No model: a scripted agent plays the gold actions (smoke test).")
]
UserOpt = Annotated[
    str,
    typer.Option(help="tau2 user simulator: model (an LLM) or gold (replays gold user actions)."),
]
UserThinkingOpt = Annotated[bool, typer.Option(help="tau2: let the user simulator think.")]
JudgeModelOpt = Annotated[
    str | None,
    typer.Option(help="tau2: served model name judging NL assertions (default: no judge)."),
]
JudgeBaseUrlOpt = Annotated[
    list[str] | None,
    typer.Option("--judge-base-url", help="tau2: judge's SGLang URL (default: the user's)."),
]
ScriptedBrokenOpt = Annotated[
    bool,
    typer.Option(help="tau2, no model: a scripted agent that never calls a tool (smoke test)."),
]

MAX_STEPS = {"tau": 30, "tau2": 100}  # tau-bench's and tau2-bench's caps


@dataclass(frozen=True)
class RunOptions:
    """What ``agentkit tau run`` runs and how (the flags, after defaults are filled in)."""

    domain: str
    data_dir: Path | None
    split: str
    tasks: str
    out: Path | None
    urls: list[str]
    user_urls: list[str]
    judge_urls: list[str] | None
    mode: str
    tokenizer: Path | None
    model: str
    user_model: str
    judge_model: str | None
    temperature: float
    thinking: bool
    user_thinking: bool
    max_steps: int
    one_call_per_turn: bool
    trials: int
    concurrency: int
    scripted_gold: bool
    scripted_broken: bool
    user: str
