"""Exports of recorded episodes: slime ``Sample`` dicts, verl agent-loop rows, an
OpenAI-messages view for SFT, and a Parquet dataset Hugging Face ``datasets`` loads.

Only finished episodes are exported. Infrastructure failures (and cancelled runs) are left out
of the training exports and counted in the :class:`ExportReport` - never scored 0. Policy
failures stay in, with reward 0.0 when the reward function gave none. GRPO groups that are not
whole after that are dropped, flagged or refused by an explicit policy (:mod:`.groups`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from agentkit.trajectory.aborted import CUT_REASONS, aborted_episode
from agentkit.trajectory.groups import (
    GroupPolicy,
    IncompleteGroup,
    IncompleteGroupError,
    census,
    group_key,
    incomplete_groups,
    member_key,
)
from agentkit.trajectory.partial import merge_partial_rollouts
from agentkit.trajectory.records import (
    EpisodeStatus,
    FailureAttribution,
    ModelCallRecord,
    Trajectory,
)
from agentkit.trajectory.replay import (
    replay_gaps,
    routed_experts_or_none,
    sampling_mask_or_none,
    turn_and_tool_scores,
)
from agentkit.trajectory.rows import NotTokenExact, RowInvariantError, TrainingRow, build_rows

ExportFormat = Literal["slime", "verl", "sft", "hf"]
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


class Exclusion(BaseModel):
    episode_id: str
    reason: str


class ExportReport(BaseModel):
    """What an export kept and what it left out, with why."""

    episodes: int = 0
    exported_episodes: int = 0
    rows: int = 0
    excluded: list[Exclusion] = Field(default_factory=list)
    flagged_rows: dict[str, list[str]] = Field(default_factory=dict)
    group_policy: GroupPolicy = "drop"
    aborted_episodes: int = 0
    """cut episodes exported as aborted samples (``cut_episodes="aborted"``)"""
    dropped_groups: list[IncompleteGroup] = Field(default_factory=list)
    """GRPO groups left out whole because a sample was missing (``drop`` policy)."""
    flagged_groups: list[IncompleteGroup] = Field(default_factory=list)
    """Incomplete GRPO groups exported anyway, rows marked ``group_incomplete`` (``flag``)."""

    def exclude(self, episode_id: str, reason: str) -> None:
        self.excluded.append(Exclusion(episode_id=episode_id, reason=reason))


def exclusion_reason(traj: Trajectory) -> str | None:
    """Why an episode must stay out of training exports, or ``None`` if it may go in."""
    end = traj.end
    if end is None:
        return "unfinished"
    if end.failure is FailureAttribution.INFRASTRUCTURE:
        return "infrastructure failure"
    if end.status is EpisodeStatus.CANCELLED:
        return "cancelled"
    if end.status is EpisodeStatus.AWAITING_APPROVAL:
        return "awaiting approval"
    if end.status is EpisodeStatus.MODEL_ERROR and end.failure is not FailureAttribution.POLICY:
        return "model error"
    return None


def episode_reward(traj: Trajectory) -> float | None:
    """The training reward: the recorded one; 0.0 for a policy failure left unscored."""
    end = traj.end
    if end is None:
        return None
    if end.reward is not None:
        return float(end.reward)
    if end.failure is FailureAttribution.POLICY or end.status in (
        EpisodeStatus.OUTPUT_INVALID,
        EpisodeStatus.MAX_TURNS,
    ):
        return 0.0
    return None


class EpisodeRows(BaseModel):
    trajectory: Trajectory
    rows: list[TrainingRow]
    reward: float
    group_incomplete: bool = False
    aborted: bool = False
    """a cut episode's complete part, exported by ``cut_episodes="aborted"`` (reward 0)"""


CutEpisodes = Literal["drop", "aborted"]


def trainable_episodes(
    trajectories: Iterable[Trajectory],
    report: ExportReport | None = None,
    *,
    group_policy: GroupPolicy = "drop",
    cut_episodes: CutEpisodes = "drop",
) -> list[EpisodeRows]:
    """Finished, scored, token-exact episodes with their checked rows; the rest is reported.

    Episodes cut short are left out, or with ``cut_episodes="aborted"`` exported as aborted
    samples: their complete calls, reward 0 (see :mod:`.aborted`). Groups left uneven by the
    exclusions are handled by ``group_policy`` (see :mod:`.groups`); ``fail`` raises
    :class:`IncompleteGroupError`.
    """
    report = report if report is not None else ExportReport()
    report.group_policy = group_policy
    trajectories = list(trajectories)
    kept: list[EpisodeRows] = []
    for traj in trajectories:
        report.episodes += 1
        reason = exclusion_reason(traj)
        reward = episode_reward(traj)
        if reason is None and reward is None:
            reason = "no reward"
        if reason is None:
            try:
                rows = build_rows(traj)
            except NotTokenExact:
                reason = "not token-exact (chat mode)"
            except RowInvariantError as exc:
                reason = f"invariant broken: {exc}"
            else:
                if not rows:
                    reason = "no model calls"
        if reason is not None:
            cut = aborted_episode(traj) if cut_episodes == "aborted" else None
            if reason in CUT_REASONS and cut is not None:
                part, rows = cut
                report.aborted_episodes += 1
                report.exported_episodes += 1
                report.rows += len(rows)
                kept.append(EpisodeRows(trajectory=part, rows=rows, reward=0.0, aborted=True))
                continue
            report.exclude(traj.episode_id, reason)
            continue
        assert reward is not None
        for row in rows:
            if row.flags:
                report.flagged_rows[row.row_id] = list(row.flags)
        report.exported_episodes += 1
        report.rows += len(rows)
        kept.append(EpisodeRows(trajectory=traj, rows=rows, reward=reward))
    kept = _apply_group_policy(trajectories, kept, report, group_policy)
    return _group_contiguous(kept)


def _apply_group_policy(
    trajectories: list[Trajectory],
    kept: list[EpisodeRows],
    report: ExportReport,
    policy: GroupPolicy,
) -> list[EpisodeRows]:
    members: dict[str, set[str]] = {}
    for item in kept:
        members.setdefault(_group_key(item.trajectory), set()).add(member_key(item.trajectory))
    excluded = {x.episode_id: x.reason for x in report.excluded}
    uneven = incomplete_groups(census(trajectories), members, excluded)
    if not uneven:
        return kept
    if policy == "fail":
        raise IncompleteGroupError(uneven)
    names = {g.group_id: g for g in uneven}
    report.dropped_groups.extend(g for g in uneven if g.kept == 0)
    if policy == "flag":
        report.flagged_groups.extend(g for g in uneven if g.kept > 0)
        return [
            item.model_copy(update={"group_incomplete": True})
            if _group_key(item.trajectory) in names
            else item
            for item in kept
        ]
    report.dropped_groups.extend(g for g in uneven if g.kept > 0)
    out: list[EpisodeRows] = []
    for item in kept:
        group = names.get(_group_key(item.trajectory))
        if group is None:
            out.append(item)
            continue
        report.exclude(
            item.trajectory.episode_id,
            f"group incomplete: {group.group_id} has {group.kept} of {group.expected} samples",
        )
        report.exported_episodes -= 1
        report.rows -= len(item.rows)
        for row in item.rows:
            report.flagged_rows.pop(row.row_id, None)
    return out


_group_key = group_key


def _group_contiguous(items: list[EpisodeRows]) -> list[EpisodeRows]:
    """Order episodes group by group (first appearance), then by sample index (stable)."""
    order: dict[str, int] = {}
    for item in items:
        order.setdefault(_group_key(item.trajectory), len(order))
    return sorted(
        items,
        key=lambda e: (
            order[_group_key(e.trajectory)],
            e.trajectory.start.sample_index if e.trajectory.start.sample_index is not None else 0,
        ),
    )


def _merged_calls(traj: Trajectory, row: TrainingRow) -> list[ModelCallRecord]:
    by_index = {c.index: c for c in traj.calls}
    return [by_index[i] for i in row.call_indices]


def _prompt_messages(traj: Trajectory) -> list[dict[str, Any]]:
    if traj.start.prompt_messages:
        return list(traj.start.prompt_messages)
    messages: list[dict[str, Any]] = []
    if traj.start.instructions:
        messages.append({"role": "system", "content": traj.start.instructions})
    return messages


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
        traj = episode.trajectory
        group_index = groups.setdefault(_group_key(traj), len(groups))
        end = traj.end
        assert end is not None
        for row in episode.rows:
            calls = _merged_calls(traj, row)
            status = _SLIME_STATUS[end.status]
            if row.finish_reasons and row.finish_reasons[-1] == "length":
                status = "truncated"
            if episode.aborted:
                status = "aborted"
            samples.append(
                {
                    "group_index": group_index,
                    "index": len(samples),
                    "rollout_id": rollout_id,
                    "prompt": _prompt_messages(traj),
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
                    "status": status,
                    "metadata": {
                        "episode_id": traj.episode_id,
                        "task_id": traj.start.task_id,
                        "group_id": _group_key(traj),
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
                    },
                    "generate_function_path": None,
                    "train_metadata": None,
                    "session_id": traj.episode_id,
                    "non_generation_time": sum(s.latency_s for s in traj.steps),
                    "spec_info": {
                        "spec_accept_token_num": sum(
                            int(c.engine_meta.get("spec_accept_token_num", 0) or 0) for c in calls
                        ),
                        "spec_draft_token_num": sum(
                            int(c.engine_meta.get("spec_draft_token_num", 0) or 0) for c in calls
                        ),
                        "spec_verify_ct": sum(c.spec_verify_ct or 0 for c in calls),
                        "completion_token_num": sum(c.completion_tokens or 0 for c in calls),
                    },
                    "prefix_cache_info": {
                        "cached_tokens": sum(c.cached_tokens or 0 for c in calls),
                        "total_prompt_tokens": sum(c.prompt_tokens or 0 for c in calls),
                    },
                }
            )
    return samples


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


def verl_rows(episodes: Sequence[EpisodeRows]) -> list[dict[str, Any]]:
    """One verl agent-loop output per training row; ``uid`` is the GRPO group."""
    out: list[dict[str, Any]] = []
    for episode in episodes:
        traj = episode.trajectory
        end = traj.end
        assert end is not None
        for row in episode.rows:
            llm_s = sum(c.elapsed_s for c in _merged_calls(traj, row))
            out.append(
                {
                    "uid": _group_key(traj),
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


def sft_messages(traj: Trajectory) -> list[dict[str, Any]]:
    """The episode as OpenAI chat messages (assistant turns keep ``reasoning_content``, tool
    calls with JSON-string arguments, and the ``call_index`` of the model call they came from).

    Built from the records, so the tool outputs are the rendered text the model saw.
    """
    messages = _prompt_messages(traj)
    for item in traj.items():
        if isinstance(item, ModelCallRecord):
            message: dict[str, Any] = {"role": "assistant", "content": item.content}
            if item.reasoning is not None:
                message["reasoning_content"] = item.reasoning
            if item.tool_calls:
                message["tool_calls"] = [call.to_openai() for call in item.tool_calls]
            message["call_index"] = item.index
            messages.append(message)
        elif item.step_type == "tool":
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": item.call.id if item.call else "",
                    "name": item.call.name if item.call else "",
                    "content": item.output,
                }
            )
        elif item.step_type == "user":
            messages.append({"role": "user", "content": item.output})
    return messages


def sft_records(
    trajectories: Iterable[Trajectory],
    report: ExportReport | None = None,
    *,
    min_reward: float | None = None,
) -> list[dict[str, Any]]:
    """The OpenAI-messages view for SFT: one record per usable finished episode.

    Chat-mode episodes are included (no token ids needed). ``min_reward`` keeps only episodes
    scored at least that much (rejection sampling).
    """
    report = report if report is not None else ExportReport()
    out: list[dict[str, Any]] = []
    for traj in trajectories:
        report.episodes += 1
        reason = exclusion_reason(traj)
        reward = episode_reward(traj)
        if reason is None and min_reward is not None and (reward is None or reward < min_reward):
            reason = f"reward below {min_reward}"
        if reason is not None:
            report.exclude(traj.episode_id, reason)
            continue
        end = traj.end
        assert end is not None
        report.exported_episodes += 1
        report.rows += 1
        out.append(
            {
                "messages": sft_messages(traj),
                "tools": traj.start.tools,
                "chat_template_kwargs": {"enable_thinking": traj.start.thinking},
                "episode_id": traj.episode_id,
                "task_id": traj.start.task_id,
                "group_id": _group_key(traj),
                "sample_index": traj.start.sample_index,
                "status": end.status.value,
                "reward": reward,
                "token_exact": traj.start.token_exact,
            }
        )
    return out


def _pyarrow() -> Any:
    try:
        import pyarrow
    except ImportError as exc:  # depends on the install
        raise ImportError("the hf export needs pyarrow: pip install 'agentkit[rl]'") from exc
    return pyarrow


def hf_table(episodes: Sequence[EpisodeRows]) -> Any:
    """The training rows as a pyarrow Table (int32 tokens, int8 mask, float32 log-probs)."""
    pa = _pyarrow()

    from agentkit.trajectory.records import SCHEMA_VERSION

    schema = pa.schema(
        [
            ("episode_id", pa.string()),
            ("task_id", pa.string()),
            ("group_id", pa.string()),
            ("sample_index", pa.int32()),
            ("row_index", pa.int32()),
            ("tokens", pa.list_(pa.int32())),
            ("prompt_len", pa.int32()),
            ("loss_mask", pa.list_(pa.int8())),
            ("rollout_logprobs", pa.list_(pa.float32())),
            ("reward", pa.float64()),
            ("status", pa.string()),
            ("span_starts", pa.list_(pa.int32())),
            ("span_lengths", pa.list_(pa.int32())),
            ("span_sources", pa.list_(pa.string())),
            ("weight_versions", pa.list_(pa.string())),
            ("flags", pa.list_(pa.string())),
            ("group_incomplete", pa.bool_()),
        ],
        metadata={
            b"agentkit.format": b"agentkit-training-rows",
            b"agentkit.schema_version": str(SCHEMA_VERSION).encode(),
        },
    )
    columns: dict[str, list[Any]] = {name: [] for name in schema.names}
    for episode in episodes:
        traj = episode.trajectory
        assert traj.end is not None
        for row in episode.rows:
            values: dict[str, Any] = {
                "episode_id": traj.episode_id,
                "task_id": traj.start.task_id,
                "group_id": _group_key(traj),
                "sample_index": traj.start.sample_index,
                "row_index": row.row_index,
                "tokens": row.tokens,
                "prompt_len": row.prompt_len,
                "loss_mask": row.loss_mask,
                "rollout_logprobs": row.rollout_logprobs,
                "reward": episode.reward,
                "status": "aborted" if episode.aborted else traj.end.status.value,
                "span_starts": [s.start for s in row.spans],
                "span_lengths": [s.length for s in row.spans],
                "span_sources": [s.source.value for s in row.spans],
                "weight_versions": row.weight_versions,
                "flags": row.flags,
                "group_incomplete": episode.group_incomplete,
            }
            for name, value in values.items():
                columns[name].append(value)
    return pa.table(columns, schema=schema)


def write_jsonl(records: Iterable[dict[str, Any]], path: str | Path) -> int:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def export(
    trajectories: Iterable[Trajectory],
    out_path: str | Path,
    fmt: ExportFormat,
    *,
    decode: Decoder | None = None,
    min_reward: float | None = None,
    group_policy: GroupPolicy = "drop",
    merge_partial: bool = True,
    cut_episodes: CutEpisodes = "drop",
) -> ExportReport:
    """Write one export format: JSONL for ``slime``/``verl``/``sft``, Parquet for ``hf``.

    RL formats first join every resumed episode to its continuation (partial rollouts, see
    :mod:`.partial`; ``merge_partial=False`` keeps them apart, and the cut original is then left
    out as unfinished or failed), then apply ``group_policy`` to GRPO groups left uneven
    (``fail`` raises :class:`IncompleteGroupError` before anything is written); SFT has no
    groups.
    """
    report = ExportReport()
    if fmt == "sft":
        write_jsonl(sft_records(trajectories, report, min_reward=min_reward), out_path)
        return report
    if merge_partial:
        trajectories = merge_partial_rollouts(trajectories)
    episodes = trainable_episodes(
        trajectories, report, group_policy=group_policy, cut_episodes=cut_episodes
    )
    if fmt == "slime":
        write_jsonl(slime_samples(episodes, decode=decode), out_path)
    elif fmt == "verl":
        write_jsonl(verl_rows(episodes), out_path)
    elif fmt == "hf":
        _pyarrow()
        import pyarrow.parquet as pq

        Path(out_path).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(hf_table(episodes), out_path, compression="zstd")
    else:
        raise ValueError(f"unknown export format {fmt!r} (slime, verl, sft, hf)")
    return report
