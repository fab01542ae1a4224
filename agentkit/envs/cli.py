"""``agentkit tau``: run tau-bench style episodes, or replay actions without a model."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import anyio
import typer

from .cli_options import (
    MAX_STEPS,
    BaseUrlOpt,
    BenchmarkOpt,
    ConcurrencyOpt,
    DataDirOpt,
    DomainOpt,
    JudgeBaseUrlOpt,
    JudgeModelOpt,
    MaxStepsOpt,
    ModelOpt,
    ModeOpt,
    OneCallPerTurnOpt,
    OutOpt,
    RunOptions,
    ScriptedBrokenOpt,
    ScriptedGoldOpt,
    SplitOpt,
    TasksOpt,
    TemperatureOpt,
    ThinkingOpt,
    TokenizerOpt,
    TrialsOpt,
    UserBaseUrlOpt,
    UserModelOpt,
    UserOpt,
    UserThinkingOpt,
)
from .registry import BENCHMARKS, load_domain, load_tau2_domain

app = typer.Typer(
    name="tau",
    help=(
        "TAU-style customer-support environments: tau-bench (retail, airline; demo) and, with "
        "--benchmark tau2, tau2-bench (telecom with dual control, retail, airline)."
    ),
    no_args_is_help=True,
    add_completion=False,
)


def _load(domain: str, data_dir: Path | None, split: str = "test") -> Any:
    try:
        return load_domain(domain, data_dir, split)
    except (ValueError, OSError) as exc:
        raise typer.BadParameter(str(exc)) from exc


def _load_tau2(domain: str, data_dir: Path | None) -> Any:
    try:
        return load_tau2_domain(domain, data_dir)
    except (ValueError, OSError) as exc:
        raise typer.BadParameter(str(exc)) from exc


def _check_benchmark(benchmark: str) -> None:
    if benchmark not in BENCHMARKS:
        raise typer.BadParameter(f"--benchmark must be one of {', '.join(BENCHMARKS)}")


@app.command()
def replay(
    domain: DomainOpt,
    actions: Annotated[
        Path | None,
        typer.Option(
            "--actions",
            help='JSON list of {"name": ..., "kwargs": {...}} (tau2: "arguments" and '
            '"requestor": assistant|user; default: the task\'s gold actions).',
        ),
    ] = None,
    data_dir: DataDirOpt = None,
    benchmark: BenchmarkOpt = "tau",
    task_id: Annotated[
        str | None, typer.Option("--task-id", help="tau2: the task whose initial state to apply.")
    ] = None,
) -> None:
    """Run actions through the domain's tools on a fresh database; print observations and hash.
    With --benchmark tau2: apply the task's initial state first; print post-initialisation
    hashes, each observation, the final hashes of both databases and the non-LLM reward
    components."""
    from .replay import load_actions
    from .replay import replay as run_replay

    _check_benchmark(benchmark)
    if benchmark == "tau2":
        _replay_tau2(domain, data_dir, task_id, actions)
        return
    if actions is None:
        raise typer.BadParameter("--actions is required for tau-bench replays")
    loaded = _load(domain, data_dir)
    try:
        parsed = load_actions(actions)
    except (ValueError, OSError) as exc:
        raise typer.BadParameter(f"--actions: {exc}") from exc
    result = anyio.run(run_replay, loaded, parsed)
    sys.stdout.write(json.dumps(result.model_dump(), ensure_ascii=False) + "\n")


def _replay_tau2(
    domain: str, data_dir: Path | None, task_id: str | None, actions: Path | None
) -> None:
    from .tau2.commands import replay_command

    if task_id is None:
        raise typer.BadParameter("--benchmark tau2 replays need --task-id")
    loaded = _load_tau2(domain, data_dir)
    try:
        text = replay_command(loaded, task_id, actions)
    except KeyError as exc:
        raise typer.BadParameter(f"--task-id: {exc.args[0]}") from exc
    except (ValueError, OSError) as exc:
        raise typer.BadParameter(f"--actions: {exc}") from exc
    sys.stdout.write(text + "\n")


@app.command()
def run(
    domain: DomainOpt,
    data_dir: DataDirOpt = None,
    tasks: TasksOpt = "all",
    trials: TrialsOpt = 1,
    concurrency: ConcurrencyOpt = 8,
    split: SplitOpt = "test",
    base_url: BaseUrlOpt = None,
    user_base_url: UserBaseUrlOpt = None,
    mode: ModeOpt = "chat",
    tokenizer: TokenizerOpt = None,
    model: ModelOpt = "default",
    user_model: UserModelOpt = "default",
    temperature: TemperatureOpt = 0.0,
    thinking: ThinkingOpt = True,
    max_steps: MaxStepsOpt = None,
    one_call_per_turn: OneCallPerTurnOpt = True,
    out: OutOpt = None,
    scripted_gold: ScriptedGoldOpt = False,
    benchmark: BenchmarkOpt = "tau",
    user: UserOpt = "model",
    user_thinking: UserThinkingOpt = False,
    judge_model: JudgeModelOpt = None,
    judge_base_url: JudgeBaseUrlOpt = None,
    scripted_broken: ScriptedBrokenOpt = False,
) -> None:
    """Run episodes of tasks x trials; print rewards per task and pass^k (tau2: and the reward
    components each failed episode missed)."""
    _check_benchmark(benchmark)
    urls = base_url or [u for u in os.environ.get("AGENTKIT_BASE_URL", "").split(",") if u]
    options = RunOptions(
        domain=domain,
        data_dir=data_dir,
        split=split,
        tasks=tasks,
        out=out,
        urls=urls,
        user_urls=user_base_url or urls,
        judge_urls=judge_base_url,
        mode=mode,
        tokenizer=tokenizer,
        model=model,
        user_model=user_model,
        judge_model=judge_model,
        temperature=temperature,
        thinking=thinking,
        user_thinking=user_thinking,
        max_steps=max_steps or MAX_STEPS[benchmark],
        one_call_per_turn=one_call_per_turn,
        trials=trials,
        concurrency=concurrency,
        scripted_gold=scripted_gold,
        scripted_broken=scripted_broken,
        user=user,
    )
    if benchmark == "tau2":
        _run_tau2(options)
    else:
        _run_tau(options)


def _run_tau(options: RunOptions) -> None:
    from .runner import render_table
    from .tasks import parse_range

    domain, data_dir, split = options.domain, options.data_dir, options.split
    loaded = _load(domain, data_dir, split)
    if not loaded.tasks:
        raise typer.BadParameter(f"no tasks_{split} file found for {domain} in {data_dir}")
    try:
        indices = parse_range(options.tasks, len(loaded.tasks))
    except ValueError as exc:
        raise typer.BadParameter(f"--tasks: {exc}") from exc
    if not options.urls and not options.scripted_gold:
        raise typer.BadParameter("give --base-url (or $AGENTKIT_BASE_URL), or --scripted-gold")
    folder = _out_folder(options, domain)
    summary = anyio.run(_run, loaded, indices, options, folder)
    sys.stdout.write(render_table(summary) + "\n")
    sys.stdout.write(f"trajectories: {folder / 'trajectories.jsonl'}\n")


def _run_tau2(options: RunOptions) -> None:
    from .tasks import parse_range
    from .tau2.commands import USER_KINDS, render_tau2_table, run_command, select_tasks

    if options.user not in USER_KINDS:
        raise typer.BadParameter(f"--user must be one of {', '.join(USER_KINDS)}")
    scripted = options.scripted_gold or options.scripted_broken
    if not options.urls and not scripted:
        raise typer.BadParameter("give --base-url (or $AGENTKIT_BASE_URL), or --scripted-gold")
    loaded = _load_tau2(options.domain, options.data_dir)
    assert options.data_dir is not None  # _load_tau2 checked it
    try:
        pool = select_tasks(loaded, Path(options.data_dir), options.split)
        indices = [pool[i] for i in parse_range(options.tasks, len(pool))]
    except ValueError as exc:
        raise typer.BadParameter(f"--split/--tasks: {exc}") from exc
    folder = _out_folder(options, f"tau2-{options.domain}")

    def make_model(urls: list[str], name: str, temperature: float | None) -> Any:
        return _model(urls, options, name, temperature)

    summary = anyio.run(run_command, loaded, indices, options, folder, make_model)
    sys.stdout.write(render_tau2_table(summary) + "\n")
    sys.stdout.write(f"trajectories: {folder / 'trajectories.jsonl'}\n")


def _out_folder(options: RunOptions, stem: str) -> Path:
    """``--out``, or ``tau-runs/<stem>-<time>``; created if missing."""
    folder = options.out or Path("tau-runs") / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _model(urls: list[str], options: RunOptions, name: str, temperature: float | None) -> Any:
    from agentkit.models import SGLangChat
    from agentkit.models.base import ModelSettings

    settings = ModelSettings(temperature=temperature)
    if options.mode == "chat":
        return SGLangChat(urls, model=name, settings=settings)
    if options.mode == "tokens":
        from agentkit.models.sglang_tokens import SGLangTokens

        if options.tokenizer is None:
            raise typer.BadParameter("token mode needs --tokenizer")
        return SGLangTokens(urls, options.tokenizer, model=name, settings=settings)
    raise typer.BadParameter("mode must be 'chat' or 'tokens'")


async def _run(domain: Any, indices: list[int], options: RunOptions, folder: Path) -> Any:
    from agentkit.agent import Agent
    from agentkit.trajectory.store import JsonlStore

    from .runner import ProgressBar, run_tasks
    from .scripted import GoldPolicy, instruction_user
    from .user import ModelUser

    async def go(agent_urls: list[str], user_urls: list[str], scripted: bool) -> Any:
        agent_model = _model(agent_urls, options, options.model, options.temperature)
        user_model = None if scripted else _model(user_urls, options, options.user_model, None)

        def make_user(task: Any) -> Any:
            return instruction_user(task) if user_model is None else ModelUser(user_model)

        limit = domain.max_tool_calls_per_turn if options.one_call_per_turn else None
        agent: Agent[Any, Any] = domain.agent(
            agent_model,
            thinking=options.thinking,
            max_turns=options.max_steps,
            max_tool_calls_per_turn=limit,
        )
        with JsonlStore(folder / "trajectories.jsonl") as store:
            try:
                summary = await run_tasks(
                    domain,
                    agent,
                    make_user,
                    task_indices=indices,
                    trials=options.trials,
                    concurrency=options.concurrency,
                    max_steps=options.max_steps,
                    recorder=store,
                    progress=ProgressBar(),
                )
            finally:
                await agent.aclose()
                if user_model is not None:
                    await user_model.aclose()
        (folder / "results.json").write_text(summary.model_dump_json(indent=1), encoding="utf-8")
        return summary

    if options.scripted_gold:
        from agentkit.testing import SGLangTestServer

        sys.stderr.write("[--scripted-gold: a scripted agent plays each task's gold actions]\n")
        async with SGLangTestServer(policy=GoldPolicy(domain)) as server:
            return await go([server.base_url], [server.base_url], True)
    return await go(options.urls, options.user_urls, False)
