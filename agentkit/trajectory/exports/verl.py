"""verl export: one agent-loop output per training row, ``uid`` naming the GRPO group."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agentkit.trajectory.groups import group_key
from agentkit.trajectory.records import ModelCallRecord, Trajectory
from agentkit.trajectory.replay import turn_and_tool_scores

from .episode_parts import row_calls
from .selection import EpisodeRows


def verl_rows(episodes: Sequence[EpisodeRows]) -> list[dict[str, Any]]:
    """One verl agent-loop output per training row; ``uid`` is the GRPO group."""
    out: list[dict[str, Any]] = []
    for episode in episodes:
        traj = episode.trajectory
        end = traj.end
        assert end is not None
        for row in episode.rows:
            llm_s = sum(c.elapsed_s for c in row_calls(traj, row))
            out.append(
                {
                    "uid": group_key(traj),
                    "prompt_ids": row.prompt_ids,
                    "response_ids": row.response_ids,
                    "response_mask": list(row.loss_mask),
                    "response_logprobs": (
                        list(row.rollout_logprobs) if row.rollout_logprobs is not None else None
                    ),
                    "reward_score": episode.reward,
                    "num_turns": _num_turns(traj),
                    "metrics": {
                        "generate_sequences": llm_s,
                        "tool_calls": sum(s.latency_s for s in traj.steps),
                    },
                    "extra_fields": {
                        "episode_id": traj.episode_id,
                        "task_id": traj.start.task_id,
                        "sample_index": traj.start.sample_index,
                        "row_index": row.row_index,
                        "status": "aborted" if episode.aborted else end.status.value,
                        "reward_components": end.reward_components,
                        "weight_versions": row.weight_versions,
                        "flags": list(row.flags),
                        "group_incomplete": episode.group_incomplete,
                        **turn_and_tool_scores(traj),
                    },
                }
            )
    return out


def _num_turns(traj: Trajectory) -> int:
    """verl's count (its ``ToolAgentLoop``): 1 for the prompt, 1 per model call, and 1 per
    round of environment replies (the tool results of one call count once, however many)."""
    rounds = 0
    in_env = False
    for item in traj.items():
        if isinstance(item, ModelCallRecord):
            in_env = False
        elif not in_env:
            rounds += 1
            in_env = True
    return 1 + len(traj.calls) + rounds
