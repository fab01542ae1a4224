"""slime export: one ``Sample.to_dict()``-shaped dict per training row."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from agentkit.trajectory.groups import group_key
from agentkit.trajectory.records import EpisodeEnd, EpisodeStatus, ModelCallRecord
from agentkit.trajectory.replay import replay_gaps, routed_experts_or_none, sampling_mask_or_none
from agentkit.trajectory.rows import TrainingRow

from .episode_parts import prompt_messages, row_calls
from .selection import EpisodeRows

Decoder = Callable[[list[int]], str]

# episode status -> slime Sample.Status value. Running out of turns is ``completed``, as
# slime's own multi-turn builder (``slime.agent.trajectory``) marks every finished trajectory;
# only a reply cut at the token limit is ``truncated`` (slime's ``generate`` does the same).
_SLIME_STATUS = {
    EpisodeStatus.COMPLETED: "completed",
    EpisodeStatus.MAX_TURNS: "completed",
    EpisodeStatus.TRUNCATED: "truncated",
    EpisodeStatus.OUTPUT_INVALID: "failed",
    EpisodeStatus.FAILED: "failed",
    EpisodeStatus.MODEL_ERROR: "aborted",
    EpisodeStatus.CANCELLED: "aborted",
    EpisodeStatus.RUNNING: "pending",
}


def slime_samples(
    episodes: Sequence[EpisodeRows], *, decode: Decoder | None = None
) -> list[dict[str, Any]]:
    """One slime ``Sample.to_dict()``-shaped dict per training row, groups contiguous.

    ``group_index`` numbers GRPO groups, ``index`` the samples, ``rollout_id`` the episodes (rows
    of one episode share it). ``response`` is decoded only when ``decode`` is given.
    """
    samples: list[dict[str, Any]] = []
    groups: dict[str, int] = {}
    for rollout_id, episode in enumerate(episodes):
        group_index = groups.setdefault(group_key(episode.trajectory), len(groups))
        for row in episode.rows:
            sample = _sample(episode, row, decode)
            sample.update(group_index=group_index, index=len(samples), rollout_id=rollout_id)
            samples.append(sample)
    return samples


def _sample(episode: EpisodeRows, row: TrainingRow, decode: Decoder | None) -> dict[str, Any]:
    """One row as a sample; the caller fills ``group_index``, ``index`` and ``rollout_id``."""
    traj = episode.trajectory
    assert traj.end is not None
    calls = row_calls(traj, row)
    return {
        "group_index": None,
        "index": None,
        "rollout_id": None,
        "prompt": prompt_messages(traj),
        "tokens": list(row.tokens),
        "multimodal_inputs": None,
        "multimodal_train_inputs": None,
        "response": decode(row.response_ids) if decode else "",
        "response_length": row.response_length,
        "label": traj.start.label,
        "reward": episode.reward,
        "loss_mask": list(row.loss_mask),
        "weight_versions": [str(v) for v in row.weight_versions if v is not None],
        "rollout_log_probs": (
            list(row.rollout_logprobs) if row.rollout_logprobs is not None else None
        ),
        "rollout_routed_experts": routed_experts_or_none(row, calls),
        "remove_sample": False,
        "teacher_log_probs": None,
        "status": _status(episode, row, traj.end),
        "metadata": _metadata(episode, row, traj.end, calls),
        "generate_function_path": None,
        "train_metadata": None,
        "session_id": traj.episode_id,
        "non_generation_time": sum(s.latency_s for s in traj.steps),
        "spec_info": _spec_info(calls),
        "prefix_cache_info": {
            "cached_tokens": sum(c.cached_tokens or 0 for c in calls),
            "total_prompt_tokens": sum(c.prompt_tokens or 0 for c in calls),
        },
    }


def _status(episode: EpisodeRows, row: TrainingRow, end: EpisodeEnd) -> str:
    if episode.aborted:
        return "aborted"
    if row.finish_reasons and row.finish_reasons[-1] == "length":
        return "truncated"
    return _SLIME_STATUS[end.status]


def _metadata(
    episode: EpisodeRows, row: TrainingRow, end: EpisodeEnd, calls: list[ModelCallRecord]
) -> dict[str, Any]:
    traj = episode.trajectory
    return {
        "episode_id": traj.episode_id,
        "task_id": traj.start.task_id,
        "group_id": group_key(traj),
        "sample_index": traj.start.sample_index,
        "row_index": row.row_index,
        # slime's train data takes metadata["raw_reward"] over Sample.reward:
        # the training reward, never None (the recorded one is kept beside it)
        "raw_reward": episode.reward,
        "recorded_reward": end.reward,
        "reward_components": end.reward_components,
        "termination_reason": end.termination_reason,
        "flags": list(row.flags),
        "group_incomplete": episode.group_incomplete,
        "spans": [s.model_dump(mode="json") for s in row.spans],
        "turn_rewards": dict(end.turn_rewards),
        "tool_rewards": dict(end.tool_rewards),
        "sampling_mask": sampling_mask_or_none(row, calls),
        "replay_gaps": replay_gaps(row, calls),
    }


def _spec_info(calls: list[ModelCallRecord]) -> dict[str, int]:
    """Speculative decoding totals over the row's calls, as slime's ``spec_info``."""
    return {
        "spec_accept_token_num": sum(
            int(c.engine_meta.get("spec_accept_token_num", 0) or 0) for c in calls
        ),
        "spec_draft_token_num": sum(
            int(c.engine_meta.get("spec_draft_token_num", 0) or 0) for c in calls
        ),
        "spec_verify_ct": sum(c.spec_verify_ct or 0 for c in calls),
        "completion_token_num": sum(c.completion_tokens or 0 for c in calls),
    }
