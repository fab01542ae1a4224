"""Episodes cut short, exported as aborted samples (the export's ``cut_episodes="aborted"``).

An episode that did not finish (the process died, the server aborted a call, the run was
cancelled) is left out of training exports by default. A trainer with partial-rollout support
can take it instead as an *aborted* sample: its complete model calls (up to the last one whose
tool results were recorded, as :func:`~agentkit.trajectory.partial.resume_point` finds it), with
the loss mask on exactly those calls' sampled tokens, reward 0 and status ``aborted``.
"""

from __future__ import annotations

from agentkit.trajectory.partial import NotResumable, resume_point
from agentkit.trajectory.records import EpisodeEnd, EpisodeStatus, FailureAttribution, Trajectory
from agentkit.trajectory.rows import NotTokenExact, RowInvariantError, TrainingRow, build_rows

#: Exclusion reasons (``exports.exclusion_reason``) of an episode that was cut short.
CUT_REASONS = frozenset({"unfinished", "cancelled", "model error", "infrastructure failure"})


def aborted_episode(traj: Trajectory) -> tuple[Trajectory, list[TrainingRow]] | None:
    """The complete part of a cut episode and its rows, or ``None`` when nothing is complete."""
    try:
        point = resume_point(traj)
    except NotResumable:
        return None
    calls = sorted(traj.calls, key=lambda c: c.index)[: point.kept_calls]
    steps = [s for s in traj.steps if s.turn < point.turns_done]
    end = traj.end or EpisodeEnd(
        episode_id=traj.episode_id,
        status=EpisodeStatus.CANCELLED,
        failure=FailureAttribution.INFRASTRUCTURE,
        termination_reason="cut short: the store has no end record",
    )
    kept = Trajectory(start=traj.start, calls=calls, steps=steps, end=end)
    try:
        rows = build_rows(kept)
    except (NotTokenExact, RowInvariantError):
        return None
    return (kept, rows) if rows else None
