"""The store's line format and its tolerant reader.

One record per JSON line (:func:`encode_record`, :func:`decode_record`). Token-mode calls are
stored linearly: :class:`PrefixTracker` omits ``input_ids`` the previous call implies and
:func:`group_records` rebuilds them. The reader keeps every complete, valid line, skips a torn
last line, reports any other bad line instead of raising, and lists episodes that have a start
but no end as unfinished. Writing is :mod:`agentkit.trajectory.store`; Parquet files are read by
:mod:`agentkit.trajectory.parquet`, which builds on this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from agentkit.trajectory.recorder import Record
from agentkit.trajectory.records import (
    EnvStepRecord,
    EpisodeStart,
    ModelCallRecord,
    RunManifest,
    Trajectory,
    TrajectoryItem,
)
from agentkit.trajectory.shards import is_sharded, shard_paths

_ITEM = TypeAdapter[Record](TrajectoryItem)


def encode_record(item: Record) -> bytes:
    """One record as one JSON line (UTF-8, newline-terminated)."""
    return item.model_dump_json().encode("utf-8") + b"\n"


def decode_record(line: bytes | str) -> Record:
    """Parse one JSON line back into its record type (``kind`` selects it)."""
    return _ITEM.validate_json(line)


def _flat(call: ModelCallRecord) -> list[int]:
    return [i for seg in call.appended for i in seg.ids]


class PrefixTracker:
    """Per episode, the token context a call's ``input_ids`` extends: the previous successful
    call's ``input_ids + output_ids`` (a failed call changes nothing, as in the token session)."""

    def __init__(self) -> None:
        self._held: dict[str, list[int]] = {}

    def elide(self, call: ModelCallRecord) -> ModelCallRecord:
        """The call as a store line keeps it: ``input_ids`` omitted when derivable."""
        ids = call.input_ids
        held = self._held.get(call.episode_id)
        out = call
        if ids is not None and held is not None and call.input_elided is None:
            appended = _flat(call)
            if (
                len(ids) == len(held) + len(appended)
                and ids[len(held) :] == appended
                and ids[: len(held)] == held
            ):
                out = call.model_copy(update={"input_ids": None, "input_elided": len(ids)})
        self.advance(call)
        return out

    def restore(self, call: ModelCallRecord) -> tuple[ModelCallRecord, str | None]:
        """The call with ``input_ids`` rebuilt (or an error text when they cannot be)."""
        error: str | None = None
        if call.input_ids is None and call.input_elided is not None:
            held = self._held.get(call.episode_id)
            if held is None:
                error = f"call {call.index}: input_ids omitted but no earlier call to extend"
            else:
                ids = held + _flat(call)
                if len(ids) != call.input_elided:
                    error = (
                        f"call {call.index}: rebuilt input_ids have {len(ids)} tokens, "
                        f"the line says {call.input_elided}"
                    )
                else:
                    call = call.model_copy(update={"input_ids": ids, "input_elided": None})
        self.advance(call)
        return call, error

    def advance(self, call: ModelCallRecord) -> None:
        if call.failed or call.input_ids is None or call.output_ids is None:
            return
        self._held[call.episode_id] = call.input_ids + call.output_ids

    def forget(self, episode_id: str) -> None:
        self._held.pop(episode_id, None)


class BadLine(BaseModel):
    """A line the reader could not use, with why."""

    line: int
    error: str
    torn: bool = False
    file: str | None = None
    """the shard the line is in (sharded stores)"""


class StoreContents(BaseModel):
    """Everything a store holds, grouped by episode in the order episodes started."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    manifest: RunManifest | None = None
    episodes: list[Trajectory] = Field(default_factory=list)
    bad_lines: list[BadLine] = Field(default_factory=list)
    orphans: int = 0

    @property
    def finished(self) -> list[Trajectory]:
        return [t for t in self.episodes if t.finished]

    @property
    def unfinished(self) -> list[Trajectory]:
        """Episodes with a start but no end (the run died or is still going)."""
        return [t for t in self.episodes if not t.finished]

    @property
    def torn_tail(self) -> bool:
        return any(b.torn for b in self.bad_lines)

    def episode(self, episode_id: str) -> Trajectory:
        for traj in self.episodes:
            if traj.episode_id == episode_id:
                return traj
        raise KeyError(episode_id)


def group_records(items: Iterable[Record]) -> StoreContents:
    """Group a stream of records into trajectories (records of unknown episodes are counted
    as orphans, not raised)."""
    contents = StoreContents()
    by_id: dict[str, Trajectory] = {}
    prefixes = PrefixTracker()
    for item in items:
        if isinstance(item, RunManifest):
            if contents.manifest is None:
                contents.manifest = item
        elif isinstance(item, EpisodeStart):
            traj = Trajectory(start=item)
            by_id[item.episode_id] = traj
            contents.episodes.append(traj)
        else:
            found = by_id.get(item.episode_id)
            if found is None:
                contents.orphans += 1
            elif isinstance(item, ModelCallRecord):
                call, error = prefixes.restore(item)
                if error is not None:
                    contents.bad_lines.append(BadLine(line=0, error=f"{item.episode_id}: {error}"))
                found.calls.append(call)
            elif isinstance(item, EnvStepRecord):
                found.steps.append(item)
            else:
                found.end = item
                prefixes.forget(item.episode_id)
    return contents


def iter_jsonl(path: str | Path, bad: list[BadLine] | None = None) -> Iterator[Record]:
    """Yield every valid record of a JSONL store; bad lines go to ``bad`` (a torn last line is
    marked ``torn``)."""
    with Path(path).open("rb") as handle:
        data = handle.read()
    lines = data.split(b"\n")
    # after a final newline split() leaves an empty tail; a non-empty tail is a torn write
    tail = lines.pop()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield decode_record(line)
        except (ValidationError, ValueError) as exc:
            if bad is not None:
                bad.append(BadLine(line=number, error=_short(exc)))
    if tail.strip():
        try:
            yield decode_record(tail)
        except (ValidationError, ValueError) as exc:
            if bad is not None:
                bad.append(BadLine(line=len(lines) + 1, error=_short(exc), torn=True))


def read_jsonl(path: str | Path) -> StoreContents:
    """Read a JSONL store back, tolerating a torn last line and reporting unfinished episodes."""
    bad: list[BadLine] = []
    contents = group_records(iter_jsonl(path, bad))
    contents.bad_lines = bad + contents.bad_lines
    return contents


def iter_store_records(path: str | Path, bad: list[BadLine] | None = None) -> Iterator[Record]:
    """Every record of a JSONL store, or of every JSONL shard of a sharded store in order."""
    if not is_sharded(path):
        yield from iter_jsonl(path, bad)
        return
    for shard in shard_paths(path):
        shard_bad: list[BadLine] = []
        yield from iter_jsonl(shard, shard_bad)
        if bad is not None:
            bad.extend(b.model_copy(update={"file": shard.name}) for b in shard_bad)


def read_sharded(path: str | Path) -> StoreContents:
    """Read a sharded store (a folder of shards, see :mod:`.shards`) as one store."""
    bad: list[BadLine] = []
    contents = group_records(list(iter_store_records(path, bad)))
    contents.bad_lines = bad + contents.bad_lines
    return contents


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
