"""The tau2 side of ``agentkit tau replay`` and ``agentkit tau run --benchmark tau2``."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .domain import Tau2Domain
from .judge import NLJudge
from .replay import load_tau2_actions, replay_task
from .runner import Tau2RunSummary, render_tau2_table, run_tau2_tasks
from .scripted import Tau2GoldPolicy
from .tasks import Tau2Task
from .users import GoldScriptedUser, Tau2ModelUser, Tau2User

USER_KINDS = ("model", "gold")


def replay_command(domain: Tau2Domain, task_id: str, actions: Path | None) -> str:
    """JSON of :class:`~agentkit.envs.tau2.replay.Tau2ReplayResult` (gold actions when
    ``actions`` is None)."""
    task = domain.task(task_id)
    parsed = load_tau2_actions(actions) if actions is not None else None
    return json.dumps(replay_task(domain, task, parsed).model_dump(), ensure_ascii=False)


def select_tasks(domain: Tau2Domain, data_dir: Path, split: str | None) -> list[int]:
    """Indices of the tasks in ``split_tasks.json[split]`` (all tasks without a split file or
    with ``split`` None or ``all``)."""
    split_file = data_dir / "split_tasks.json"
    if split is None or split == "all" or not split_file.is_file():
        return list(range(len(domain.tasks)))
    splits: dict[str, list[str]] = json.loads(split_file.read_text(encoding="utf-8"))
    if split not in splits:
        raise ValueError(f"no split {split!r} in {split_file}; have {', '.join(splits)}")
    wanted = set(splits[split])
    return [i for i, task in enumerate(domain.tasks) if task.id in wanted]


async def run_command(
    domain: Tau2Domain,
    indices: list[int],
    options: Any,
    folder: Path,
    make_model: Callable[[list[str], str, float | None], Any],
) -> Tau2RunSummary:
    """Run the episodes; ``options`` carries the CLI's values (see ``agentkit.envs.cli``)."""
    from agentkit.agent import Agent
    from agentkit.trajectory.store import JsonlStore

    from ..runner import ProgressBar

    scripted = options.scripted_gold or options.scripted_broken
    server = None
    urls, user_urls = options.urls, options.user_urls
    if scripted:
        from agentkit.testing import SGLangTestServer

        policy = Tau2GoldPolicy(domain, broken=options.scripted_broken)
        server = SGLangTestServer(policy=policy).start()
        urls = user_urls = [server.base_url]
        sys.stderr.write("[scripted: a test server plays the agent, the gold user replies]\n")
    user_kind = "gold" if scripted else options.user
    agent_model = make_model(urls, options.model, options.temperature)
    user_model = None if user_kind == "gold" else make_model(user_urls, options.user_model, None)
    judge_model = None
    if options.judge_model is not None:
        judge_urls = options.judge_urls or user_urls
        judge_model = make_model(judge_urls, options.judge_model, 0.0)

    def make_user(task: Tau2Task) -> Tau2User:
        if user_model is None:
            return GoldScriptedUser()
        return Tau2ModelUser(user_model, thinking=options.user_thinking)

    agent: Agent[Any, Any] = domain.agent(
        agent_model, thinking=options.thinking, max_turns=options.max_steps
    )
    try:
        with JsonlStore(folder / "trajectories.jsonl") as store:
            summary = await run_tau2_tasks(
                domain,
                agent,
                make_user,
                task_indices=indices,
                trials=options.trials,
                concurrency=options.concurrency,
                max_steps=options.max_steps,
                recorder=store,
                judge=NLJudge(judge_model) if judge_model is not None else None,
                progress=ProgressBar(),
            )
    finally:
        await agent.aclose()
        for extra in (user_model, judge_model):
            if extra is not None:
                await extra.aclose()
        if server is not None:
            server.stop()
    (folder / "results.json").write_text(summary.model_dump_json(indent=1), encoding="utf-8")
    return summary


__all__ = ["USER_KINDS", "render_tau2_table", "replay_command", "run_command", "select_tasks"]
