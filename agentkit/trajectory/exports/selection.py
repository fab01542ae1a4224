"""Which recorded episodes go into training exports, with their checked rows.

Only finished episodes are exported. Infrastructure failures (and cancelled runs) are left out
and counted in the :class:`ExportReport` - never scored 0. Policy failures stay in, with reward
0.0 when the reward function gave none. GRPO groups that are not whole after that are dropped,
flagged or refused by an explicit policy (:mod:`agentkit.trajectory.groups`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

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
from agentkit.trajectory.records import EpisodeStatus, FailureAttribution, Trajectory
from agentkit.trajectory.rows import NotTokenExact, RowInvariantError, TrainingRow, build_rows

CutEpisodes = Literal["drop", "aborted"]


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


class EpisodeRows(BaseModel):
    trajectory: Trajectory
    rows: list[TrainingRow]
    reward: float
    group_incomplete: bool = False
    aborted: bool = False
    """a cut episode's complete part, exported by ``cut_episodes="aborted"`` (reward 0)"""


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


def trainable_episodes(
    trajectories: Iterable[Trajectory],
    report: ExportReport | None = None,
    *,
    group_policy: GroupPolicy = "drop",
    cut_episodes: CutEpisodes = "drop",
) -> list[EpisodeRows]:
    """Finished, scored, token-exact episodes with their checked rows; the rest is reported.

    Episodes cut short are left out, or with ``cut_episodes="aborted"`` exported as aborted
    samples: their complete calls, reward 0 (see :mod:`agentkit.trajectory.aborted`). Groups
    left uneven by the exclusions are handled by ``group_policy`` (see
    :mod:`agentkit.trajectory.groups`); ``fail`` raises :class:`IncompleteGroupError`.
    """
    report = report if report is not None else ExportReport()
    report.group_policy = group_policy
    trajectories = list(trajectories)
    kept: list[EpisodeRows] = []
    for traj in trajectories:
        report.episodes += 1
        item = _episode_rows(traj, report, cut_episodes)
        if item is not None:
            report.exported_episodes += 1
            report.rows += len(item.rows)
            kept.append(item)
    kept = _apply_group_policy(trajectories, kept, report, group_policy)
    return _group_contiguous(kept)


def _episode_rows(
    traj: Trajectory, report: ExportReport, cut_episodes: CutEpisodes
) -> EpisodeRows | None:
    """The episode's exported rows, or ``None`` after recording why it is left out."""
    reason = exclusion_reason(traj)
    reward = episode_reward(traj)
    rows: list[TrainingRow] = []
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
            part, cut_rows = cut
            report.aborted_episodes += 1
            return EpisodeRows(trajectory=part, rows=cut_rows, reward=0.0, aborted=True)
        report.exclude(traj.episode_id, reason)
        return None
    assert reward is not None
    for row in rows:
        if row.flags:
            report.flagged_rows[row.row_id] = list(row.flags)
    return EpisodeRows(trajectory=traj, rows=rows, reward=reward)


def _apply_group_policy(
    trajectories: list[Trajectory],
    kept: list[EpisodeRows],
    report: ExportReport,
    policy: GroupPolicy,
) -> list[EpisodeRows]:
    members: dict[str, set[str]] = {}
    for item in kept:
        members.setdefault(group_key(item.trajectory), set()).add(member_key(item.trajectory))
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
            if group_key(item.trajectory) in names
            else item
            for item in kept
        ]
    report.dropped_groups.extend(g for g in uneven if g.kept > 0)
    out: list[EpisodeRows] = []
    for item in kept:
        group = names.get(group_key(item.trajectory))
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


def _group_contiguous(items: list[EpisodeRows]) -> list[EpisodeRows]:
    """Order episodes group by group (first appearance), then by sample index (stable)."""
    order: dict[str, int] = {}
    for item in items:
        order.setdefault(group_key(item.trajectory), len(order))
    return sorted(
        items,
        key=lambda e: (
            order[group_key(e.trajectory)],
            e.trajectory.start.sample_index if e.trajectory.start.sample_index is not None else 0,
        ),
    )
