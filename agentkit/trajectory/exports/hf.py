"""Hugging Face export: the training rows as a typed pyarrow table (``datasets`` loads it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agentkit.trajectory.groups import group_key
from agentkit.trajectory.records import SCHEMA_VERSION

from .selection import EpisodeRows


def pyarrow_module() -> Any:
    """``pyarrow``, or an ImportError naming the extra that installs it."""
    try:
        import pyarrow
    except ImportError as exc:  # depends on the install
        raise ImportError("the hf export needs pyarrow: pip install 'agentkit[rl]'") from exc
    return pyarrow


def _schema(pa: Any) -> Any:
    return pa.schema(
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


def hf_table(episodes: Sequence[EpisodeRows]) -> Any:
    """The training rows as a pyarrow Table (int32 tokens, int8 mask, float32 log-probs)."""
    pa = pyarrow_module()
    schema = _schema(pa)
    columns: dict[str, list[Any]] = {name: [] for name in schema.names}
    for episode in episodes:
        traj = episode.trajectory
        assert traj.end is not None
        for row in episode.rows:
            values: dict[str, Any] = {
                "episode_id": traj.episode_id,
                "task_id": traj.start.task_id,
                "group_id": group_key(traj),
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
