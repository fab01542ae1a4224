"""GRPO group integrity for training exports.

A GRPO trainer normalises advantages within each group of samples of one task, so a group that
lost a sample (a dead server, a reward function that raised) silently changes every other
sample's advantage. An export therefore applies an explicit policy to groups that are not whole:

- ``drop`` (the default): leave the whole group out, and say so in the report;
- ``flag``: keep what there is, with every row marked ``group_incomplete``;
- ``fail``: refuse the export (:class:`IncompleteGroupError`) before anything is written.

A group's expected size is the largest of: the ``group_size`` the rollout recorded in the
episodes' metadata, the number of episodes the store holds for the group (trainable or not), and
the highest ``sample_index`` + 1 seen.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, Field

from agentkit.trajectory.records import Trajectory

GroupPolicy = Literal["drop", "flag", "fail"]
GROUP_POLICIES: tuple[GroupPolicy, ...] = ("drop", "flag", "fail")


def group_key(traj: Trajectory) -> str:
    """The GRPO group an episode belongs to: its group id, else its task, else itself."""
    start = traj.start
    return start.group_id or start.task_id or start.episode_id


class IncompleteGroup(BaseModel):
    """A group that is not whole in the export, and why."""

    group_id: str
    expected: int
    kept: int
    missing_reasons: dict[str, str] = Field(default_factory=dict)
    """episode id (or ``sample <k>`` for a sample the store never saw) -> why it is missing"""


class IncompleteGroupError(ValueError):
    """Raised by the ``fail`` policy: the export would hold uneven GRPO groups."""

    def __init__(self, groups: Sequence[IncompleteGroup]) -> None:
        names = ", ".join(f"{g.group_id} ({g.kept}/{g.expected})" for g in groups[:10])
        more = f" and {len(groups) - 10} more" if len(groups) > 10 else ""
        super().__init__(f"incomplete GRPO groups: {names}{more}")
        self.groups = list(groups)


def member_key(traj: Trajectory) -> str:
    """A group member: its sample index (a rerun of a sample replaces the attempt before it),
    or the episode itself when it has none."""
    index = traj.start.sample_index
    return f"sample {index}" if index is not None else f"episode {traj.episode_id}"


@dataclass
class _GroupCensus:
    recorded_size: int = 0
    max_index: int = -1
    members: dict[str, list[str]] = field(default_factory=dict)
    """member key -> the episode ids recorded for it (several when a sample was rerun)"""


def census(trajectories: Iterable[Trajectory]) -> dict[str, _GroupCensus]:
    """What the store holds per group, whatever became of each episode."""
    groups: dict[str, _GroupCensus] = {}
    for traj in trajectories:
        entry = groups.setdefault(group_key(traj), _GroupCensus())
        entry.members.setdefault(member_key(traj), []).append(traj.episode_id)
        size = traj.start.metadata.get("group_size")
        if isinstance(size, int) and size > entry.recorded_size:
            entry.recorded_size = size
        index = traj.start.sample_index
        if index is not None:
            entry.max_index = max(entry.max_index, index)
    return groups


def incomplete_groups(
    groups: dict[str, _GroupCensus],
    kept: dict[str, set[str]],
    excluded: dict[str, str],
) -> list[IncompleteGroup]:
    """Groups whose kept members fall short of the expected size.

    ``kept`` maps a group to the member keys (:func:`member_key`) that would be exported,
    ``excluded`` an episode id to the reason it was left out.
    """
    out: list[IncompleteGroup] = []
    for gid, entry in groups.items():
        expected = max(entry.recorded_size, len(entry.members), entry.max_index + 1)
        have = kept.get(gid, set())
        if len(have) >= expected:
            continue
        reasons: dict[str, str] = {}
        for key, episode_ids in entry.members.items():
            if key not in have:
                for eid in episode_ids:
                    reasons[eid] = excluded.get(eid, "not exported")
        if entry.max_index >= 0 or entry.recorded_size:
            for k in range(expected):
                if f"sample {k}" not in entry.members:
                    reasons[f"sample {k}"] = "never recorded"
        out.append(
            IncompleteGroup(
                group_id=gid, expected=expected, kept=len(have), missing_reasons=reasons
            )
        )
    return out
