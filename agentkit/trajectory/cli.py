"""Command line: ``agentkit export`` (slime, verl, SFT, HF) and ``agentkit rollout``.

The main CLI adds ``export``, ``rollout`` and ``compact`` as top-level commands
(``EXTRA_COMMANDS``); ``python -m agentkit.trajectory.cli`` runs the same commands standalone
(``cli_app``).
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, cast

import anyio
import typer

from agentkit.cli_output import plain_errors_unless_terminal
from agentkit.trajectory.exports import ExportFormat, ExportReport
from agentkit.trajectory.exports import export as export_records
from agentkit.trajectory.groups import GROUP_POLICIES, IncompleteGroupError
from agentkit.trajectory.records import Usage
from agentkit.trajectory.store import FsyncPolicy, read_store

EXTRA_COMMANDS = ("export", "rollout", "compact")

FORMATS = ("slime", "verl", "sft", "hf")


def _summary(report: ExportReport) -> dict[str, Any]:
    reasons: dict[str, int] = {}
    for item in report.excluded:
        key = item.reason.split(":")[0]
        reasons[key] = reasons.get(key, 0) + 1
    return {
        "episodes": report.episodes,
        "exported_episodes": report.exported_episodes,
        "rows": report.rows,
        "excluded": reasons,
        "flagged_rows": len(report.flagged_rows),
        "group_policy": report.group_policy,
        "dropped_groups": [g.model_dump() for g in report.dropped_groups],
        "flagged_groups": [g.model_dump() for g in report.flagged_groups],
    }


def export(
    store: Annotated[Path, typer.Argument(help="Trajectory store (.jsonl or .parquet).")],
    out: Annotated[Path, typer.Argument(help="Output file (.jsonl; .parquet for hf).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="slime | verl | sft | hf")] = "slime",
    tokenizer: Annotated[
        Path | None,
        typer.Option(help="tokenizer.json or folder: fills slime's decoded `response`."),
    ] = None,
    min_reward: Annotated[
        float | None, typer.Option(help="SFT only: keep episodes with at least this reward.")
    ] = None,
    group_policy: Annotated[
        str,
        typer.Option(
            help="GRPO groups a sample is missing from: drop them whole, flag their rows, or fail."
        ),
    ] = "drop",
    cut_episodes: Annotated[
        str,
        typer.Option(
            help="Episodes cut short: drop them, or export their complete part as aborted."
        ),
    ] = "drop",
) -> None:
    """Export a store for training: slime Samples, verl rows, sft messages, hf Parquet.

    Infrastructure failures and unfinished episodes are left out (and counted); GRPO groups left
    uneven by that are dropped whole (default), flagged, or refused (--group-policy).
    """
    if fmt not in FORMATS:
        raise typer.BadParameter(f"choose one of {', '.join(FORMATS)}", param_hint="--format")
    if cut_episodes not in ("drop", "aborted"):
        raise typer.BadParameter("choose drop or aborted", param_hint="--cut-episodes")
    if group_policy not in GROUP_POLICIES:
        raise typer.BadParameter(
            f"choose one of {', '.join(GROUP_POLICIES)}", param_hint="--group-policy"
        )
    if not store.exists():
        raise typer.BadParameter(f"{store} does not exist", param_hint="STORE")
    decode = None
    if tokenizer is not None:
        from agentkit.tokenizer import load_tokenizer

        decode = load_tokenizer(tokenizer).decode
    contents = read_store(store)
    try:
        report = export_records(
            contents.episodes,
            out,
            cast(ExportFormat, fmt),
            decode=decode,
            min_reward=min_reward,
            group_policy=group_policy,
            cut_episodes="aborted" if cut_episodes == "aborted" else "drop",
        )
    except IncompleteGroupError as exc:
        typer.echo(f"error: {exc} (nothing written; see --group-policy)", err=True)
        raise typer.Exit(1) from exc
    summary = _summary(report)
    if contents.bad_lines:
        summary["bad_lines"] = len(contents.bad_lines)
    typer.echo(json.dumps({"format": fmt, "out": str(out), **summary}))


def _load(spec: str, what: str) -> Any:
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise typer.BadParameter("expected 'package.module:attribute'", param_hint=what)
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise typer.BadParameter(f"cannot load {spec!r}: {exc}", param_hint=what) from exc
    return target


def load_tasks(spec: str) -> list[Any]:
    """Tasks from a JSONL file (``id``, ``prompt``, ``label``, ``metadata`` a line) or from
    ``package.module:attribute`` (a list of tasks, or a function returning one)."""
    from agentkit.rollout import RolloutTask

    path = Path(spec)
    if path.exists():
        tasks = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                tasks.append(RolloutTask.model_validate_json(line))
            except ValueError as exc:
                raise typer.BadParameter(f"{path}:{number}: {exc}", param_hint="--tasks") from exc
        return tasks
    target = _load(spec, "--tasks")
    value = target() if callable(target) else target
    return [t if isinstance(t, RolloutTask) else RolloutTask.model_validate(t) for t in value]


def _usage_summary(usage: Usage) -> dict[str, Any]:
    return {
        "model_calls": usage.requests,
        "tool_calls": usage.tool_calls,
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "cached_tokens": usage.cached_tokens,
        "cost": usage.cost,
    }


def rollout(
    agent: Annotated[
        str, typer.Option(help="package.module:factory - factory(task) returns an Agent.")
    ],
    tasks: Annotated[str, typer.Option(help="Tasks JSONL file, or package.module:attribute.")],
    store: Annotated[
        Path, typer.Option(help="Trajectory store, resumed if it exists (a folder with --ray).")
    ],
    n: Annotated[int, typer.Option("--n", help="Samples per task (GRPO group size).")] = 1,
    concurrency: Annotated[int, typer.Option(help="Episodes running at once.")] = 8,
    reward: Annotated[
        str | None, typer.Option(help="package.module:function(task, result) -> float.")
    ] = None,
    fsync: Annotated[str, typer.Option(help="never | episode | always")] = "episode",
    progress: Annotated[bool, typer.Option(help="Show a progress bar on stderr.")] = True,
    compact_to: Annotated[
        Path | None, typer.Option("--compact", help="Also write this Parquet file at the end.")
    ] = None,
    ray: Annotated[
        bool,
        typer.Option(
            "--ray", help="Run on Ray workers; --store is then a sharded store (a folder)."
        ),
    ] = False,
    ray_address: Annotated[
        str | None,
        typer.Option(help="Ray cluster to join ('auto', 'ray://host:10001'); default: local."),
    ] = None,
    workers: Annotated[int, typer.Option(help="Ray worker actors (with --ray).")] = 2,
    episode: Annotated[
        str | None,
        typer.Option(
            help="package.module:fn(agent, task, k, store, reward_fn) running one sample "
            "(default: the task's prompt, sent once)."
        ),
    ] = None,
) -> None:
    """Run N samples of every task into a store; rerunning skips finished episodes.

    With --ray the episodes run on Ray worker actors (--concurrency episodes each), every worker
    writing its own shard of the store folder; a worker that dies has its pairs rerun.
    """
    plan = RolloutPlan(
        factory=_load(agent, "--agent"),
        reward_fn=_load(reward, "--reward") if reward else None,
        episode_fn=_load(episode, "--episode") if episode else None,
        tasks=load_tasks(tasks),
        fsync=FsyncPolicy(fsync),
        store=store,
        n=n,
        concurrency=concurrency,
        progress=progress,
        ray=ray,
        ray_address=ray_address,
        workers=workers,
    )
    report = anyio.run(plan.run)
    if compact_to is not None:
        from agentkit.trajectory.parquet import compact as compact_store

        compact_store(store, compact_to)
    typer.echo(json.dumps(_rollout_summary(report, ray=ray)))
    for failure in report.failures[:20]:
        typer.echo(f"failed {failure.task_id}#{failure.sample_index}: {failure.error}", err=True)


@dataclass(frozen=True)
class RolloutPlan:
    """What ``agentkit rollout`` runs, its options loaded: in this process or on Ray."""

    factory: Any
    tasks: list[Any]
    store: Path
    n: int
    concurrency: int
    reward_fn: Any
    episode_fn: Any
    fsync: FsyncPolicy
    progress: bool
    ray: bool
    ray_address: str | None
    workers: int

    async def run(self) -> Any:
        """The rollout's report (:class:`agentkit.rollout.RolloutReport`)."""
        episode_fn = {"episode_fn": self.episode_fn} if self.episode_fn is not None else {}
        if self.ray:
            from agentkit.rollout_ray import ray_rollout

            return await ray_rollout(
                self.factory,
                self.tasks,
                n_per_task=self.n,
                reward_fn=self.reward_fn,
                store=self.store,
                address=self.ray_address,
                workers=self.workers,
                in_flight_per_worker=self.concurrency,
                fsync=self.fsync,
                progress=self.progress,
                **episode_fn,
            )
        from agentkit.rollout import rollout as run_rollout

        return await run_rollout(
            self.factory,
            self.tasks,
            n_per_task=self.n,
            concurrency=self.concurrency,
            reward_fn=self.reward_fn,
            store=self.store,
            fsync=self.fsync,
            progress=self.progress,
            close_agents=True,
            **episode_fn,
        )


def _rollout_summary(report: Any, *, ray: bool) -> dict[str, Any]:
    """The one-line JSON summary the command prints."""
    summary: dict[str, Any] = {
        "planned": report.planned,
        "skipped": report.skipped,
        "ran": report.ran,
        "completed": report.completed,
        "failed": len(report.failures),
        "elapsed_s": round(report.elapsed_s, 3),
    }
    if ray:
        summary.update(workers=report.workers, worker_restarts=report.worker_restarts)
    summary.update(_usage_summary(report.usage), usage_episodes=report.usage_episodes)
    return summary


def compact(
    store: Annotated[Path, typer.Argument(help="JSONL trajectory store.")],
    out: Annotated[Path | None, typer.Argument(help="Parquet file (default: .parquet)")] = None,
) -> None:
    """Compact a JSONL store into Parquet (zstd, typed token columns, schema version)."""
    from agentkit.trajectory.parquet import compact as compact_store

    if not store.exists():
        raise typer.BadParameter(f"{store} does not exist", param_hint="STORE")
    path = compact_store(store, out)
    contents = read_store(path)
    typer.echo(
        json.dumps(
            {
                "out": str(path),
                "episodes": len(contents.episodes),
                "unfinished": len(contents.unfinished),
            }
        )
    )


cli_app = typer.Typer(help="Trajectories: export, rollout, compact.", add_completion=False)
for _name in EXTRA_COMMANDS:
    cli_app.command(_name)(globals()[_name])


def main() -> None:
    plain_errors_unless_terminal(cli_app)
    cli_app()


if __name__ == "__main__":
    main()
