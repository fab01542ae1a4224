"""Trajectories: records, crash-safe store, training rows and exports."""

from agentkit.trajectory.exports import (
    ExportReport,
    export,
    sft_records,
    slime_samples,
    trainable_episodes,
    verl_rows,
)
from agentkit.trajectory.parquet import compact, read_parquet
from agentkit.trajectory.recorder import MemoryRecorder, Recorder
from agentkit.trajectory.records import (
    SCHEMA_VERSION,
    EnvStepRecord,
    EpisodeEnd,
    EpisodeStart,
    EpisodeStatus,
    FailureAttribution,
    ModelCallRecord,
    RunManifest,
    TokenSegment,
    TokenSource,
    Trajectory,
)
from agentkit.trajectory.rows import (
    NotTokenExact,
    RowInvariantError,
    TrainingRow,
    build_rows,
    check_row,
    validate_row,
)
from agentkit.trajectory.store import FsyncPolicy, JsonlStore, StoreContents, read_jsonl, read_store

__all__ = [
    "SCHEMA_VERSION",
    "EnvStepRecord",
    "EpisodeEnd",
    "EpisodeStart",
    "EpisodeStatus",
    "ExportReport",
    "FailureAttribution",
    "FsyncPolicy",
    "JsonlStore",
    "MemoryRecorder",
    "ModelCallRecord",
    "NotTokenExact",
    "Recorder",
    "RowInvariantError",
    "RunManifest",
    "StoreContents",
    "TokenSegment",
    "TokenSource",
    "TrainingRow",
    "Trajectory",
    "build_rows",
    "check_row",
    "compact",
    "export",
    "read_jsonl",
    "read_parquet",
    "read_store",
    "sft_records",
    "slime_samples",
    "trainable_episodes",
    "validate_row",
    "verl_rows",
]
