"""Where the loop sends records as they happen."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from agentkit.trajectory.records import (
    EnvStepRecord,
    EpisodeEnd,
    EpisodeStart,
    ModelCallRecord,
    RunManifest,
)

Record = RunManifest | EpisodeStart | ModelCallRecord | EnvStepRecord | EpisodeEnd


@runtime_checkable
class Recorder(Protocol):
    """Receives every record of a run in order. Must not raise for valid records."""

    async def record(self, item: Record) -> None: ...


class MemoryRecorder:
    """Keeps records in a list (tests, small scripts)."""

    def __init__(self) -> None:
        self.items: list[Record] = []

    async def record(self, item: Record) -> None:
        self.items.append(item)
