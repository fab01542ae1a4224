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

from .registry import BENCHMARKS, DOMAINS, TAU2_DOMAINS, load_domain, load_tau2_domain

app = typer.Typer(
    name="tau",
    help=(
        "TAU-style customer-support environments: tau-bench (retail, airline; demo) and, with "
        "--benchmark tau2, tau2-bench (telecom with dual control, retail, airline)."
    ),
    no_args_is_help=True,
    add_completion=False,
)

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
    tasks: Annotated[str, typer.Option(help="Task indices: '0-9', '1,4,7', 'all'.")] = "all",
    trials: Annotated[int, typer.Option(min=1, help="Trials per task (pass^1..pass^trials).")] = 1,
    concurrency: Annotated[int, typer.Option(min=1, help="Episodes at a time.")] = 8,
    split: Annotated[str, typer.Option(help="Task split file: tasks_<split>.json|py.")] = "test",
    base_url: Annotated[
        list[str] | None,
        typer.Option(
            "--base-url", help="Agent's SGLang URL (repeat for several); $AGENTKIT_BASE_URL."
        ),
    ] = None,
    user_base_url: Annotated[
        list[str] | None,
        typer.Option("--user-base-url", help="User simulator's SGLang URL (default: the agent's)."),
    ] = None,
    mode: Annotated[
        str, typer.Option(help="chat (/v1/chat/completions) or tokens (/generate).")
    ] = "chat",
    tokenizer: Annotated[Path | None, typer.Option(help="Tokenizer for token mode.")] = None,
    model: Annotated[str, typer.Option(help="Agent's served model name.")] = "default",
    user_model: Annotated[
        str, typer.Option(help="User simulator's served model name.")
    ] = "default",
    temperature: Annotated[float, typer.Option(help="Agent temperature (tau-bench: 0).")] = 0.0,
    thinking: Annotated[bool, typer.Option(help="Let the agent think (GLM-4.5).")] = True,
    max_steps: Annotated[
        int | None,
        typer.Option(help="Model calls per episode before reward 0 (tau: 30, tau2: 100)."),
    ] = None,
    one_call_per_turn: Annotated[
        bool,
        typer.Option(
            "--one-call-per-turn/--all-calls-per-turn",
            help="tau-bench runs only the first tool call of a model turn (default).",
        ),
    ] = True,
    out: Annotated[
        Path | None, typer.Option(help="Folder for trajectories.jsonl and results.json.")
    ] = None,
    scripted_gold: Annotated[
        bool,
        typer.Option(help="No model: a scripted agent plays the gold actions (smoke test)."),
    ] = False,
    benchmark: BenchmarkOpt = "tau",
    user: Annotated[
        str,
        typer.Option(
            help="tau2 user simulator: model (an LLM) or gold (replays gold user actions)."
        ),
    ] = "model",
    user_thinking: Annotated[
        bool, typer.Option(help="tau2: let the user simulator think.")
    ] = False,
    judge_model: Annotated[
        str | None,
        typer.Option(help="tau2: served model name judging NL assertions (default: no judge)."),
    ] = None,
    judge_base_url: Annotated[
        list[str] | None,
        typer.Option("--judge-base-url", help="tau2: judge's SGLang URL (default: the user's)."),
    ] = None,
    scripted_broken: Annotated[
        bool,
        typer.Option(help="tau2, no model: a scripted agent that never calls a tool (smoke test)."),
    ] = False,
) -> None:
    """Run episodes of tasks x trials; print rewards per task and pass^k (tau2: and the reward
    components each failed episode missed)."""
    from .tasks import parse_range

    _check_benchmark(benchmark)
    urls = base_url or [u for u in os.environ.get("AGENTKIT_BASE_URL", "").split(",") if u]
    if benchmark == "tau2":
        tau2_options = _RunOptions(
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
            max_steps=max_steps or 100,
            trials=trials,
            concurrency=concurrency,
            scripted_gold=scripted_gold,
            scripted_broken=scripted_broken,
            user=user,
        )
        _run_tau2(domain, data_dir, split, tasks, out, tau2_options)
        return
    loaded = _load(domain, data_dir, split)
    if not loaded.tasks:
        raise typer.BadParameter(f"no tasks_{split} file found for {domain} in {data_dir}")
    try:
        indices = parse_range(tasks, len(loaded.tasks))
    except ValueError as exc:
        raise typer.BadParameter(f"--tasks: {exc}") from exc
    if not urls and not scripted_gold:
        raise typer.BadParameter("give --base-url (or $AGENTKIT_BASE_URL), or --scripted-gold")
    folder = out or Path("tau-runs") / f"{domain}-{time.strftime('%Y%m%d-%H%M%S')}"
    options = _RunOptions(
        urls=urls,
        user_urls=user_base_url or urls,
        mode=mode,
        tokenizer=tokenizer,
        model=model,
        user_model=user_model,
        temperature=temperature,
        thinking=thinking,
        max_steps=max_steps or 30,
        one_call_per_turn=one_call_per_turn,
        trials=trials,
        concurrency=concurrency,
        scripted_gold=scripted_gold,
    )
    folder.mkdir(parents=True, exist_ok=True)
    summary = anyio.run(_run, loaded, indices, options, folder)
    from .runner import render_table

    sys.stdout.write(render_table(summary) + "\n")
    sys.stdout.write(f"trajectories: {folder / 'trajectories.jsonl'}\n")


def _run_tau2(
    domain: str, data_dir: Path | None, split: str, tasks: str, out: Path | None, options: Any
) -> None:
    from .tasks import parse_range
    from .tau2.commands import USER_KINDS, render_tau2_table, run_command, select_tasks

    if options.user not in USER_KINDS:
        raise typer.BadParameter(f"--user must be one of {', '.join(USER_KINDS)}")
    scripted = options.scripted_gold or options.scripted_broken
    if not options.urls and not scripted:
        raise typer.BadParameter("give --base-url (or $AGENTKIT_BASE_URL), or --scripted-gold")
    loaded = _load_tau2(domain, data_dir)
    assert data_dir is not None  # _load_tau2 checked it
    try:
        pool = select_tasks(loaded, Path(data_dir), split)
        indices = [pool[i] for i in parse_range(tasks, len(pool))]
    except ValueError as exc:
        raise typer.BadParameter(f"--split/--tasks: {exc}") from exc
    folder = out or Path("tau-runs") / f"tau2-{domain}-{time.strftime('%Y%m%d-%H%M%S')}"
    folder.mkdir(parents=True, exist_ok=True)

    def make_model(urls: list[str], name: str, temperature: float | None) -> Any:
        return _model(urls, options, name, temperature)

    summary = anyio.run(run_command, loaded, indices, options, folder, make_model)
    sys.stdout.write(render_tau2_table(summary) + "\n")
    sys.stdout.write(f"trajectories: {folder / 'trajectories.jsonl'}\n")


class _RunOptions:
    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


def _model(urls: list[str], options: Any, name: str, temperature: float | None) -> Any:
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


async def _run(domain: Any, indices: list[int], options: Any, folder: Path) -> Any:
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
