"""Parts of a recorded episode that several export formats read."""

from __future__ import annotations

from typing import Any

from agentkit.trajectory.records import ModelCallRecord, Trajectory
from agentkit.trajectory.rows import TrainingRow


def row_calls(traj: Trajectory, row: TrainingRow) -> list[ModelCallRecord]:
    """The model calls a training row was merged from, in row order."""
    by_index = {c.index: c for c in traj.calls}
    return [by_index[i] for i in row.call_indices]


def prompt_messages(traj: Trajectory) -> list[dict[str, Any]]:
    """The conversation the episode opened with (OpenAI dicts), or its instructions alone."""
    if traj.start.prompt_messages:
        return list(traj.start.prompt_messages)
    messages: list[dict[str, Any]] = []
    if traj.start.instructions:
        messages.append({"role": "system", "content": traj.start.instructions})
    return messages
