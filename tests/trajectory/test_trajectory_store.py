"""The JSONL store: append, crash tolerance, unfinished episodes, Parquet compaction."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agentkit.trajectory.parquet import as_float32, compact, read_parquet
from agentkit.trajectory.records import (
    SCHEMA_VERSION,
    EpisodeEnd,
    EpisodeStatus,
    ModelCallRecord,
    RunManifest,
)
from agentkit.trajectory.store import FsyncPolicy, JsonlStore, read_jsonl, read_store
from tests.trajectory_fakes import records_of, token_episode

pytest.importorskip("pyarrow")


def _write(path: Path, *episodes: object, fsync: str = "never") -> None:
    with JsonlStore(path, fsync=fsync, manifest=RunManifest(model="glm-test", mode="tokens")) as s:
        for traj in episodes:
            for item in records_of(traj):  # type: ignore[arg-type]
                s.write(item)  # type: ignore[arg-type]


@pytest.mark.parametrize("policy", list(FsyncPolicy))
def test_round_trip_gives_equal_objects(tmp_path: Path, policy: FsyncPolicy) -> None:
    a, b = token_episode("ep_a", seed=1), token_episode("ep_b", seed=2, finished=False)
    path = tmp_path / "run.jsonl"
    _write(path, a, b, fsync=policy.value)
    contents = read_jsonl(path)
    assert contents.manifest is not None
    assert contents.manifest.model == "glm-test"
    assert contents.episodes == [a, b]
    assert [t.episode_id for t in contents.unfinished] == ["ep_b"]
    assert contents.bad_lines == []


@pytest.mark.anyio
async def test_async_record_interleaved_episodes(tmp_path: Path) -> None:
    a, b = token_episode("ep_a", seed=3), token_episode("ep_b", seed=4)
    path = tmp_path / "run.jsonl"
    store = JsonlStore(path, fsync="episode")
    ra, rb = records_of(a), records_of(b)
    for x, y in zip(ra, rb, strict=True):
        await store.record(x)  # type: ignore[arg-type]
        await store.record(y)  # type: ignore[arg-type]
    store.close()
    assert read_jsonl(path).episodes == [a, b]


def test_every_truncation_point_reads_back_complete_lines(tmp_path: Path) -> None:
    """Cutting the file at any byte (a kill mid-write) loses at most the torn last line."""
    traj = token_episode("ep_a", seed=5, turns=2)
    path = tmp_path / "run.jsonl"
    _write(path, traj)
    data = path.read_bytes()
    lines = data.split(b"\n")[:-1]
    ends = [sum(len(line) + 1 for line in lines[: k + 1]) for k in range(len(lines))]
    cut_path = tmp_path / "cut.jsonl"
    for cut in range(0, len(data) + 1, 97):
        cut_path.write_bytes(data[:cut])
        contents = read_jsonl(cut_path)
        complete = sum(1 for e in ends if e <= cut)
        got = (contents.manifest is not None) + sum(
            1 + len(t.calls) + len(t.steps) + (t.end is not None) for t in contents.episodes
        )
        assert got == complete
        assert contents.torn_tail == (cut not in (0, *ends))
        if complete < len(lines):
            assert not contents.finished


def test_append_after_torn_line_starts_a_new_line(tmp_path: Path) -> None:
    traj = token_episode("ep_a", seed=6, turns=2)
    path = tmp_path / "run.jsonl"
    _write(path, traj)
    data = path.read_bytes()
    path.write_bytes(data[:-40])  # the episode end is torn
    assert read_jsonl(path).unfinished
    assert traj.end is not None
    with JsonlStore(path) as store:
        store.write(traj.end)
    contents = read_jsonl(path)
    assert contents.episodes == [traj]
    assert len(contents.bad_lines) == 1
    assert not contents.bad_lines[0].torn


def test_garbage_and_orphans_are_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    end = EpisodeEnd(episode_id="nobody", status=EpisodeStatus.COMPLETED)
    path.write_text('{"kind": "model_call"}\nnot json\n' + end.model_dump_json() + "\n")
    contents = read_jsonl(path)
    assert [b.line for b in contents.bad_lines] == [1, 2]
    assert contents.orphans == 1
    assert contents.episodes == []


def test_parquet_compaction_reads_back_equal(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    episodes = [token_episode(f"ep_{i}", seed=i, turns=1 + i % 3) for i in range(4)]
    episodes.append(token_episode("ep_open", seed=9, finished=False))
    path = tmp_path / "run.jsonl"
    _write(path, *episodes)
    out = compact(path)
    assert out == tmp_path / "run.parquet"
    back = read_parquet(out)
    assert back.episodes == episodes
    assert back.episodes == read_store(path).episodes == read_store(out).episodes
    assert back.manifest == read_jsonl(path).manifest
    assert [t.episode_id for t in back.unfinished] == ["ep_open"]
    meta = pq.read_metadata(out)
    assert meta.metadata[b"agentkit.schema_version"] == str(SCHEMA_VERSION).encode()
    assert meta.row_group(0).column(0).compression == "ZSTD"
    schema = pq.read_schema(out)
    assert schema.field("input_ids").type == pa.list_(pa.int32())
    assert schema.field("output_logprobs").type == pa.list_(pa.float32())


def test_parquet_rounds_logprobs_to_float32(tmp_path: Path) -> None:
    traj = token_episode("ep_a", seed=1, turns=1)
    call = traj.calls[0]
    assert call.output_ids is not None
    values = [-0.1] * len(call.output_ids)  # not exact in float32
    traj.calls[0] = call.model_copy(update={"output_logprobs": values})
    path = tmp_path / "run.jsonl"
    _write(path, traj)
    back = read_parquet(compact(path)).episodes[0].calls[0]
    assert back.output_logprobs == as_float32(values) != values
    assert isinstance(back, ModelCallRecord)


def test_chat_mode_records_round_trip(tmp_path: Path) -> None:
    traj = token_episode("ep_chat", seed=2, turns=2)
    for i, call in enumerate(traj.calls):
        traj.calls[i] = call.model_copy(
            update={
                "mode": "chat",
                "input_ids": None,
                "output_ids": None,
                "output_logprobs": None,
                "appended": [],
            }
        )
    traj.steps[0] = traj.steps[0].model_copy(update={"appended_ids": None})
    path = tmp_path / "run.jsonl"
    _write(path, traj)
    assert read_parquet(compact(path, tmp_path / "x.parquet")).episodes == [traj]


def test_foreign_parquet_is_refused(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "other.parquet"
    pq.write_table(pa.table({"a": [1]}), path)
    with pytest.raises(ValueError, match="not an agentkit trajectory"):
        read_parquet(path)


def test_store_file_is_not_buffered(tmp_path: Path) -> None:
    """A written record is in the file before close (what survives kill -9)."""
    path = tmp_path / "run.jsonl"
    store = JsonlStore(path, fsync="never")
    traj = token_episode("ep_a", seed=1, turns=1)
    store.write(traj.start)
    assert os.path.getsize(path) > 0
    assert read_jsonl(path).unfinished[0].start == traj.start
    store.close()
