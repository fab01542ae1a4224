"""slime's custom generate function, running an agentkit agent for each sample.

Point slime at it with ``--custom-generate-function-path
agentkit.integrations.slime.generate.generate`` and name the agent with environment variables
(slime passes its own ``args``; ``args.agentkit_*`` attributes, when a launcher adds them, win):

- ``AGENTKIT_SLIME_AGENT`` (required): ``package.module:make_agent``, called once per process
  as ``make_agent(base_url)`` with slime's SGLang router URL; it returns a token-mode
  :class:`~agentkit.Agent` (e.g. over :class:`~agentkit.models.sglang_tokens.SGLangTokens`);
- ``AGENTKIT_SLIME_REWARD`` (optional): ``package.module:score``, an agentkit reward function
  ``(task, result) -> float | Reward``; without it ``sample.reward`` stays ``None`` and slime's
  own reward model (``--custom-rm-path``) scores the samples;
- ``AGENTKIT_SLIME_STORE`` (optional): a JSONL trajectory store every episode is recorded to;
- ``AGENTKIT_SLIME_RETRIES`` (default 2): reruns of a sample that failed for infrastructure
  reasons, so a transient failure does not unbalance its GRPO group.

The samples follow slime's conventions (as its own ``TrajectoryManager`` builds them): one
``Sample`` per training row (a list when history was rewritten), ``max_turns`` counts as
``completed`` (a reply cut at the token limit as ``truncated``), ``metadata["raw_reward"]`` is
the training reward and never ``None`` for a scored sample. A sample still failing after the
retries comes back ``failed`` with ``remove_sample=True`` and the reason in
``metadata["agentkit_excluded"]``.
"""

from __future__ import annotations

import os
from typing import Any

from agentkit.agent import Agent
from agentkit.integrations.episode import load_object, run_with_retries
from agentkit.rollout_episode import RewardFn, RolloutTask
from agentkit.trajectory.exports import (
    EpisodeRows,
    episode_reward,
    exclusion_reason,
    slime_samples,
)
from agentkit.trajectory.recorder import Recorder
from agentkit.trajectory.records import Trajectory
from agentkit.trajectory.rows import NotTokenExact, RowInvariantError, build_rows

_AGENTS: dict[str, Agent[Any, Any]] = {}
_STORES: dict[str, Recorder] = {}


def _setting(args: Any, name: str) -> str | None:
    value = getattr(args, f"agentkit_{name}", None)
    return str(value) if value is not None else os.environ.get(f"AGENTKIT_SLIME_{name.upper()}")


def router_url(args: Any) -> str:
    """slime's SGLang router, where every rollout request goes."""
    return f"http://{args.sglang_router_ip}:{args.sglang_router_port}"


def _agent(args: Any) -> Agent[Any, Any]:
    path = _setting(args, "agent")
    if not path:
        raise RuntimeError(
            "set AGENTKIT_SLIME_AGENT=package.module:make_agent (make_agent(base_url) -> Agent)"
        )
    url = router_url(args)
    key = f"{path}@{url}"
    if key not in _AGENTS:
        _AGENTS[key] = load_object(path)(url)
    return _AGENTS[key]


def _recorder(args: Any) -> Recorder | None:
    path = _setting(args, "store")
    if not path:
        return None
    if path not in _STORES:
        from agentkit.trajectory.store import JsonlStore

        _STORES[path] = JsonlStore(path)
    return _STORES[path]


def task_from_sample(sample: dict[str, Any]) -> RolloutTask:
    """The agentkit task of a slime sample (``Sample.to_dict()``): its prompt (a string, or
    the last user message of a message list), label and metadata."""
    prompt = sample.get("prompt")
    if isinstance(prompt, list):
        users = [m for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
        if not users:
            raise ValueError("the sample's prompt messages hold no user message")
        prompt = users[-1].get("content")
    if not isinstance(prompt, str):
        raise ValueError(f"a slime sample's prompt must be text or messages, got {type(prompt)}")
    group = sample.get("group_index")
    metadata = dict(sample.get("metadata") or {})
    return RolloutTask(
        id=str(metadata.get("task_id", group if group is not None else sample.get("index"))),
        prompt=prompt,
        label=sample.get("label"),
        metadata=metadata,
    )


def _rows(traj: Trajectory) -> tuple[EpisodeRows | None, str | None]:
    reason = exclusion_reason(traj)
    if reason is not None:
        return None, reason
    try:
        rows = build_rows(traj)
    except NotTokenExact:
        return None, "not token-exact (chat mode): the agent must use a token-mode model"
    except RowInvariantError as exc:
        return None, f"invariant broken: {exc}"
    if not rows:
        return None, "no model calls"
    reward = episode_reward(traj)
    return EpisodeRows(trajectory=traj, rows=rows, reward=reward or 0.0), None


def samples_for_episode(
    original: dict[str, Any],
    traj: Trajectory,
    *,
    decode: Any = None,
    scored: bool = True,
) -> list[dict[str, Any]]:
    """slime ``Sample`` dicts for one episode of ``original`` (a ``Sample.to_dict()``): its
    index, group and metadata kept, tokens, masks, log-probs, status and reward from agentkit."""
    episode, reason = _rows(traj)
    if episode is None:
        failed = dict(original)
        failed.update(status="failed", remove_sample=True, reward=0.0 if scored else None)
        failed["metadata"] = {
            **(original.get("metadata") or {}),
            "agentkit_excluded": reason,
            "episode_id": traj.episode_id,
            **({"raw_reward": 0.0} if scored else {}),
        }
        return [failed]
    out = []
    for item in slime_samples([episode], decode=decode):
        item["index"] = original.get("index")
        item["group_index"] = original.get("group_index")
        item["rollout_id"] = original.get("index")
        item["label"] = original.get("label")
        item["generate_function_path"] = original.get("generate_function_path")
        item["metadata"] = {**(original.get("metadata") or {}), **item["metadata"]}
        if not scored:
            item["reward"] = None
            item["metadata"].pop("raw_reward", None)
        out.append(item)
    return out


async def generate(
    args: Any, sample: Any, sampling_params: dict[str, Any], evaluation: bool = False
) -> Any:
    """slime's custom generate function: run the agent on ``sample``; a ``Sample`` (or a list
    of them, one per training row) of the same class, built from the recorded episode."""
    agent = _agent(args)
    reward_path = _setting(args, "reward")
    reward_fn: RewardFn | None = load_object(reward_path) if reward_path else None
    retries = int(_setting(args, "retries") or 2)
    original: dict[str, Any] = sample.to_dict()
    task = task_from_sample(original)
    attempts = await run_with_retries(
        agent, task, int(original.get("index") or 0), reward_fn,
        max_retries=retries, recorder=_recorder(args), group_id=task.id,
    )  # fmt: skip
    tokenizer = getattr(agent.model, "tokenizer", None)
    decode = tokenizer.decode if tokenizer is not None else None
    dicts = samples_for_episode(original, attempts[-1], decode=decode, scored=reward_fn is not None)
    built = [type(sample).from_dict(d) for d in dicts]
    return built[0] if len(built) == 1 else built
