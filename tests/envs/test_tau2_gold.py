"""Every shared tau2 gold replay, replayed through agentkit's tau2 domains, gives tau2's
post-initialisation hashes, every observation (and error flag), the hashes after every step,
the final hashes of both databases and the non-LLM reward components."""

from __future__ import annotations

import functools
import importlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from agentkit.envs.tau2.domain import Tau2Domain
from agentkit.envs.tau2.replay import replay_task
from tests.shared import REPO_ROOT, shared_file

DOMAINS = ("telecom", "retail", "airline")


def _gold_ids(domain: str) -> list[str | None]:
    """Task ids of the shared gold replays, read at collection time (None when absent: the
    test then skips with the reason)."""
    base = Path(os.environ.get("AGENTKIT_SHARED_DIR", REPO_ROOT.parent / "shared"))
    path = base / "tau2" / domain / "gold_replay.json"
    if not path.is_file():
        return [None]
    return [r["task_id"] for r in json.loads(path.read_text())["replays"]]


@functools.cache
def _domain(name: str) -> Tau2Domain:
    module = importlib.import_module(f"agentkit.envs.domains.tau2.{name}")
    loaded: Tau2Domain = module.load(shared_file("tau2", name))
    return loaded


@functools.cache
def _gold(name: str) -> dict[str, Any]:
    gold: dict[str, Any] = json.loads(shared_file("tau2", name, "gold_replay.json").read_text())
    return gold


def _expected(name: str, task_id: str) -> dict[str, Any]:
    replay: dict[str, Any] = next(r for r in _gold(name)["replays"] if r["task_id"] == task_id)
    return replay


CASES = [(d, task_id) for d in DOMAINS for task_id in _gold_ids(d)]


@pytest.mark.parametrize("domain_name", DOMAINS)
def test_initial_hashes_match(domain_name: str) -> None:
    meta = _gold(domain_name)["meta"]
    env = _domain(domain_name).fresh_env()
    assert env.db_hash() == meta["initial_db_hash"]
    assert env.user_db_hash() == meta["initial_user_db_hash"]


@pytest.mark.parametrize(("domain_name", "task_id"), CASES)
def test_gold_replay_is_identical(domain_name: str, task_id: str | None) -> None:
    if task_id is None:
        shared_file("tau2", domain_name, "gold_replay.json")  # skips with the reason
        pytest.skip("no gold replays")
    want = _expected(domain_name, task_id)
    domain = _domain(domain_name)
    got = replay_task(domain, domain.task(task_id))
    assert (got.post_init_db_hash, got.post_init_user_db_hash) == (
        want["post_init_db_hash"],
        want["post_init_user_db_hash"],
    )
    assert [(s.name, s.requestor) for s in got.steps] == [
        (s["name"], s["requestor"]) for s in want["steps"]
    ]
    for ours, theirs in zip(got.steps, want["steps"], strict=True):
        assert (ours.observation, ours.error) == (theirs["observation"], theirs["error"]), theirs
        assert (ours.db_hash_after, ours.user_db_hash_after) == (
            theirs["db_hash_after"],
            theirs["user_db_hash_after"],
        ), theirs["i"]
    assert (got.final_db_hash, got.final_user_db_hash) == (
        want["final_db_hash"],
        want["final_user_db_hash"],
    )
    comps = want["components"]
    assert got.reward_basis == want["reward_basis"]
    assert got.components["DB"]["match"] is comps["DB"]["match"]
    assert got.components["ENV_ASSERTION"]["met"] == comps["ENV_ASSERTION"]["met"]
    assert got.components["ACTION"]["reward"] == comps["ACTION"]["reward"]
    assert got.components["COMMUNICATE"]["reward"] == comps["COMMUNICATE"]["reward"]
    assert got.reward_without_nl == want["gold_reward_without_nl"]
