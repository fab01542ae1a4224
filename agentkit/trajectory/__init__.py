"""Trajectories: records, crash-safe store, training rows and exports.

The names below load on first use (PEP 562), so a run that writes records through
``agentkit.trajectory.records`` never loads the store, the exports or pyarrow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from agentkit.trajectory.store import (
        FsyncPolicy,
        JsonlStore,
        StoreContents,
        read_jsonl,
        read_store,
    )

_MODULES = {
    "exports": (
        "ExportReport",
        "export",
        "sft_records",
        "slime_samples",
        "trainable_episodes",
        "verl_rows",
    ),
    "parquet": ("compact", "read_parquet"),
    "recorder": ("MemoryRecorder", "Recorder"),
    "records": (
        "SCHEMA_VERSION",
        "EnvStepRecord",
        "EpisodeEnd",
        "EpisodeStart",
        "EpisodeStatus",
        "FailureAttribution",
        "ModelCallRecord",
        "RunManifest",
        "TokenSegment",
        "TokenSource",
        "Trajectory",
    ),
    "rows": (
        "NotTokenExact",
        "RowInvariantError",
        "TrainingRow",
        "build_rows",
        "check_row",
        "validate_row",
    ),
    "store": ("FsyncPolicy", "JsonlStore", "StoreContents", "read_jsonl", "read_store"),
}
_HOME = {name: module for module, names in _MODULES.items() for name in names}

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


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
