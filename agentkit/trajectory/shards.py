"""Sharded stores: one folder, one crash-safe JSONL shard per writer, one manifest.

Distributed rollouts write from many processes at once; each writer appends to its own shard
(``O_APPEND`` lines, as :class:`~agentkit.trajectory.store.JsonlStore`), so no two processes
share a file. ``shards.json`` in the folder names the shards in the order they were added; it is
replaced atomically (write, fsync, rename) whenever a shard is added, so a reader never sees a
half-written manifest. :func:`~agentkit.trajectory.store.read_store`, ``compact`` and ``export``
read the folder as one store: the shards' records in manifest order.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

SHARD_MANIFEST = "shards.json"
FORMAT_NAME = "agentkit-sharded-store"


class ShardManifest(BaseModel):
    """The shards of one store, in order."""

    format: Literal["agentkit-sharded-store"] = "agentkit-sharded-store"
    version: int = 1
    created_at: float = Field(default_factory=time.time)
    shards: list[str] = Field(default_factory=list)


def is_sharded(path: str | Path) -> bool:
    """True for a folder holding a shard manifest."""
    path = Path(path)
    return path.is_dir() and (path / SHARD_MANIFEST).is_file()


def read_manifest(path: str | Path) -> ShardManifest:
    """The manifest of a sharded store (a clear error for a folder that is not one)."""
    target = Path(path) / SHARD_MANIFEST
    try:
        return ShardManifest.model_validate_json(target.read_bytes())
    except FileNotFoundError:
        raise ValueError(f"{path} is not a sharded agentkit store (no {SHARD_MANIFEST})") from None


def shard_paths(path: str | Path) -> list[Path]:
    """The shard files of a sharded store, in manifest order (missing ones left out)."""
    root = Path(path)
    return [root / name for name in read_manifest(root).shards if (root / name).is_file()]


class ShardedStore:
    """Creates (or reopens) a sharded store and hands out new shard files."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(f"{self.path} exists and is not a folder: a sharded store is one")
        self.path.mkdir(parents=True, exist_ok=True)
        if is_sharded(self.path):
            self.manifest = read_manifest(self.path)
        else:
            self.manifest = ShardManifest()
            self._write()

    def add_shard(self, stem: str) -> Path:
        """Register a new shard named after ``stem`` (a suffix makes it unique) and return it."""
        name = f"{stem}.jsonl"
        n = 1
        while name in self.manifest.shards or (self.path / name).exists():
            n += 1
            name = f"{stem}-{n}.jsonl"
        self.manifest.shards.append(name)
        self._write()
        return self.path / name

    def _write(self) -> None:
        target = self.path / SHARD_MANIFEST
        tmp = target.with_name(target.name + ".tmp")
        data = json.dumps(self.manifest.model_dump(), indent=1).encode()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        tmp.replace(target)
