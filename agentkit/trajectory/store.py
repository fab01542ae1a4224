"""The crash-safe JSONL store: one record per line, written as it happens, read back tolerantly.

Each record is encoded to one line and handed to the kernel with a single ``write`` on a file
opened with ``O_APPEND``, so once :meth:`JsonlStore.record` returns the line survives the death
of the process (``kill -9``); only a power loss needs ``fsync``, which :class:`FsyncPolicy`
chooses. Concurrent episodes of one process share a store safely: a line is written whole,
with no ``await`` in between.

Storage is linear in episode length: a token-mode call's line omits ``input_ids`` when they are
the previous call's ``input_ids + output_ids`` followed by the call's ``appended`` segments (the
append-only invariant of token mode), keeping only their length (``input_elided``);
:func:`group_records` rebuilds them, so readers see full records. Lines written with full
``input_ids`` (older stores, or a call that does not extend the previous one) read as before.

The reader keeps every complete, valid line, skips a torn last line (the process died in the
middle of a write), reports any other bad line instead of raising, and lists episodes that have
a start but no end as unfinished. The line format and the reader are
:mod:`agentkit.trajectory.store_format` (re-exported here), so :mod:`.parquet` builds on them
without importing this module back.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path

import anyio

from agentkit.trajectory.parquet import read_parquet
from agentkit.trajectory.recorder import Record
from agentkit.trajectory.records import EpisodeEnd, ModelCallRecord, RunManifest, Usage
from agentkit.trajectory.shards import is_sharded
from agentkit.trajectory.store_format import (
    BadLine,
    PrefixTracker,
    StoreContents,
    decode_record,
    encode_record,
    group_records,
    iter_jsonl,
    iter_store_records,
    read_jsonl,
    read_sharded,
)

# the line format and the reader live in store_format; they are re-exported from here
__all__ = [
    "BadLine",
    "FsyncPolicy",
    "JsonlStore",
    "PrefixTracker",
    "StoreContents",
    "decode_record",
    "encode_record",
    "group_records",
    "iter_jsonl",
    "iter_store_records",
    "read_jsonl",
    "read_sharded",
    "read_store",
]


class FsyncPolicy(StrEnum):
    """When the store asks the disk (not only the kernel) to keep what was written.

    ``never``: lines survive a killed process, not a power loss (fastest).
    ``episode``: also fsync after each episode end, so finished episodes survive a power loss.
    ``always``: fsync after every line.
    """

    NEVER = "never"
    EPISODE = "episode"
    ALWAYS = "always"


class JsonlStore:
    """Appends records to a JSONL file; implements the loop's ``Recorder`` protocol.

    Opening an existing store appends to it (resumed runs); a torn last line left by a crash is
    closed with a newline first so the next record starts on a line of its own.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        fsync: FsyncPolicy | str = FsyncPolicy.EPISODE,
        manifest: RunManifest | None = None,
    ) -> None:
        self.path = Path(path)
        self.fsync = FsyncPolicy(fsync)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.lines_written = 0
        self.usage = Usage()
        """the usage of every episode end this object wrote (retried attempts included)"""
        self.episodes_ended = 0
        self._prefixes = PrefixTracker()
        size = os.fstat(self._fd).st_size
        if size and not _ends_with_newline(self.path, size):
            os.write(self._fd, b"\n")
        if manifest is not None and size == 0:
            self.write(manifest)

    def write(self, item: Record) -> None:
        """Append one record now (synchronous: one ``write`` call, no buffering in Python)."""
        fd = self._write_line(item)
        if self._wants_fsync(item):
            os.fsync(fd)

    def _wants_fsync(self, item: Record) -> bool:
        return self.fsync is FsyncPolicy.ALWAYS or (
            self.fsync is FsyncPolicy.EPISODE and isinstance(item, EpisodeEnd)
        )

    async def record(self, item: Record) -> None:
        """The ``Recorder`` entry point used by the planner loop and :func:`rollout`."""
        if self._wants_fsync(item):
            # the line itself is written in the event loop (atomic w.r.t. other tasks);
            # only the slow fsync goes to a worker thread.
            fd = self._write_line(item)
            await anyio.to_thread.run_sync(os.fsync, fd)
        else:
            self._write_line(item)

    def _write_line(self, item: Record) -> int:
        if self._fd is None:
            raise ValueError(f"the store {self.path} is closed")
        if isinstance(item, ModelCallRecord):
            item = self._prefixes.elide(item)
        elif isinstance(item, EpisodeEnd):
            self._prefixes.forget(item.episode_id)
        data = encode_record(item)
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self.lines_written += 1
        if isinstance(item, EpisodeEnd):  # counted once its line is written (not fsynced yet)
            self.usage.add(item.usage)
            self.episodes_ended += 1
        return self._fd

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> JsonlStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> JsonlStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


def _ends_with_newline(path: Path, size: int) -> bool:
    with path.open("rb") as handle:
        handle.seek(size - 1)
        return handle.read(1) == b"\n"


def read_store(path: str | Path) -> StoreContents:
    """Read a store written by :class:`JsonlStore` (``.jsonl``), a sharded store (a folder with
    ``shards.json``) or one made by :func:`compact` (``.parquet``)."""
    path = Path(path)
    if is_sharded(path):
        return read_sharded(path)
    if path.suffix == ".parquet":
        return read_parquet(path)
    return read_jsonl(path)
