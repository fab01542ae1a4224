"""Agents for the Ray rollout test, made on the Ray workers (importable there: the repo root is
on the workers' PYTHONPATH). A lookup of a blocked question records the worker's pid and hangs
until a release file exists, so the test can kill that worker mid-episode."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from agentkit import Agent, tool
from agentkit.models.sglang_tokens import SGLangTokens
from agentkit.rollout import RolloutTask
from agentkit.testing import build_test_tokenizer

_AGENTS: dict[str, Agent[Any, Any]] = {}


@tool(timeout=None)
def lookup(q: str) -> str:
    """Look a question up."""
    blocked = os.environ.get("RAY_TEST_BLOCK", "")
    release = Path(os.environ.get("RAY_TEST_RELEASE", "/nonexistent"))
    if blocked and q == blocked and not release.exists():
        stuck = Path(os.environ["RAY_TEST_STUCK_DIR"]) / str(os.getpid())
        stuck.write_text(q)
        deadline = time.monotonic() + 120  # bounded: the test releases or kills us first
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    return f"the answer to {q} is 42"


def make_agent(task: RolloutTask | None = None) -> Agent[Any, Any]:
    url = os.environ["RAY_TEST_SERVER_URL"]
    if url not in _AGENTS:
        _AGENTS[url] = Agent(
            model=SGLangTokens(url, build_test_tokenizer()),
            instructions="Answer with the help of lookup.",
            tools=[lookup],
            max_turns=4,
        )
    return _AGENTS[url]


def reward_failing_once(task: RolloutTask, result: Any) -> float:
    """The rollout fixture's reward, except that the first t1 sample scored raises (the marker
    file, shared by every worker process, says it happened)."""
    from tests import rollout_fixture

    mark = Path(os.environ["RAY_TEST_REWARD_MARK"])
    if task.id == "t1" and not mark.exists():
        mark.write_text("raised")
        raise RuntimeError("the verifier crashed")
    return rollout_fixture.reward(task, result).value


def local_ray_options(env: dict[str, str], workers: int = 2) -> dict[str, Any]:
    """``ray_options`` for a rollout on a local Ray instance of this machine: ``workers`` actors
    that take no CPU of their own, no dashboard, ``env`` in every worker's environment (with the
    checkout on ``PYTHONPATH`` so the tests' modules import there)."""
    from tests.shared import REPO_ROOT

    env = {
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
        **env,
    }
    return {
        "workers": workers,
        "init_options": {
            "num_cpus": 2,
            "include_dashboard": False,
            "log_to_driver": False,
            "runtime_env": {"env_vars": env},
        },
        "actor_options": {"num_cpus": 0},
    }


async def run_then_die_once(
    agent: Agent[Any, Any], task: RolloutTask, sample_index: int, store: Any, reward_fn: Any
) -> tuple[str, str | None]:
    """``run_episode``, except that the worker running ("t1", 0) the first time SIGKILLs itself
    after the episode's end is in its shard and before its reply leaves: the driver must count
    the recorded episode, not run the pair a second time."""
    import signal

    import anyio

    from agentkit.rollout_episode import run_episode

    outcome = await run_episode(agent, task, sample_index, store, reward_fn)
    mark = anyio.Path(os.environ["RAY_TEST_DIE_MARK"])
    if (task.id, sample_index) == ("t1", 0) and not await mark.exists():
        await mark.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return outcome
