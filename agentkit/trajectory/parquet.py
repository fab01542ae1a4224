"""Compaction of a JSONL store into one Parquet file, and reading it back.

One row per record, in the order the records were written. Token data get typed columns
(``list<int32>`` ids, ``list<float32>`` log-probs); everything else of a record is kept as its
JSON in ``payload``, so reading back rebuilds equal records. The file's metadata carries the
schema version and the run manifest. Compression is zstd. Needs ``pyarrow`` (extra ``rl``).

Log-probs are stored as float32, the precision SGLang computes them in: values that came from
the engine read back exactly; other floats read back rounded to float32 (:func:`as_float32`).
"""

from __future__ import annotations

import json
from array import array
from pathlib import Path
from typing import Any

from agentkit.trajectory.recorder import Record
from agentkit.trajectory.records import (
    SCHEMA_VERSION,
    EnvStepRecord,
    ModelCallRecord,
    RunManifest,
    TokenSegment,
)
from agentkit.trajectory.store_format import (
    StoreContents,
    decode_record,
    group_records,
    iter_store_records,
)

FORMAT_NAME = "agentkit-trajectory-records"
META_FORMAT = b"agentkit.format"
META_SCHEMA = b"agentkit.schema_version"
META_MANIFEST = b"agentkit.manifest"

_TOKEN_FIELDS = {"input_ids", "output_ids", "output_logprobs", "appended", "appended_ids"}


def _pa() -> Any:
    try:
        import pyarrow
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("Parquet needs pyarrow: pip install 'agentkit[rl]'") from exc
    return pyarrow


def as_float32(values: list[float]) -> list[float]:
    """The values as float32 would keep them (what Parquet stores)."""
    return array("f", values).tolist()


def _schema() -> Any:
    pa = _pa()
    return pa.schema(
        [
            ("seq", pa.int32()),
            ("kind", pa.string()),
            ("episode_id", pa.string()),
            ("input_ids", pa.list_(pa.int32())),
            ("output_ids", pa.list_(pa.int32())),
            ("output_logprobs", pa.list_(pa.float32())),
            ("appended_ids", pa.list_(pa.int32())),
            ("segment_sources", pa.list_(pa.string())),
            ("segment_lengths", pa.list_(pa.int32())),
            ("segment_steps", pa.list_(pa.int32())),
            ("payload", pa.string()),
        ]
    )


def _row(seq: int, item: Record) -> dict[str, Any]:
    row: dict[str, Any] = {
        "seq": seq,
        "kind": item.kind,
        "episode_id": getattr(item, "episode_id", None),
        "input_ids": None,
        "output_ids": None,
        "output_logprobs": None,
        "appended_ids": None,
        "segment_sources": None,
        "segment_lengths": None,
        "segment_steps": None,
        "payload": item.model_dump_json(exclude=_TOKEN_FIELDS),
    }
    if isinstance(item, ModelCallRecord):
        row["input_ids"] = item.input_ids
        row["output_ids"] = item.output_ids
        row["output_logprobs"] = item.output_logprobs
        row["appended_ids"] = [i for seg in item.appended for i in seg.ids]
        row["segment_sources"] = [seg.source.value for seg in item.appended]
        row["segment_lengths"] = [len(seg.ids) for seg in item.appended]
        row["segment_steps"] = [seg.step_index for seg in item.appended]
    elif isinstance(item, EnvStepRecord):
        row["appended_ids"] = item.appended_ids
    return row


def write_parquet(
    items: list[Record], path: str | Path, *, manifest: RunManifest | None = None
) -> Path:
    """Write records to one zstd Parquet file with the schema version in its metadata."""
    pa = _pa()
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if manifest is None:
        manifest = next((i for i in items if isinstance(i, RunManifest)), None)
    rows = [_row(seq, item) for seq, item in enumerate(items)]
    columns = {name: [r[name] for r in rows] for name in _schema().names}
    metadata = {
        META_FORMAT: FORMAT_NAME.encode(),
        META_SCHEMA: str(SCHEMA_VERSION).encode(),
    }
    if manifest is not None:
        metadata[META_MANIFEST] = manifest.model_dump_json().encode()
    table = pa.table(columns, schema=_schema().with_metadata(metadata))
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, compression="zstd")
    tmp.replace(path)
    return path


def compact(jsonl_path: str | Path, parquet_path: str | Path | None = None) -> Path:
    """Compact a JSONL store, or every shard of a sharded store, into one Parquet file (written
    to a temporary name, then renamed).

    Torn or bad lines are left out, as the reader does; unfinished episodes are kept with what
    they recorded, so the Parquet file reports them as unfinished too.
    """
    jsonl_path = Path(jsonl_path)
    target = Path(parquet_path) if parquet_path else jsonl_path.with_suffix(".parquet")
    return write_parquet(list(iter_store_records(jsonl_path)), target)


def _record(row: dict[str, Any]) -> Record:
    data: dict[str, Any] = json.loads(row["payload"])
    kind = row["kind"]
    if kind == "model_call":
        data["input_ids"] = row["input_ids"]
        data["output_ids"] = row["output_ids"]
        data["output_logprobs"] = row["output_logprobs"]
        ids = row["appended_ids"] or []
        segments: list[dict[str, Any]] = []
        start = 0
        for source, length, step in zip(
            row["segment_sources"] or [],
            row["segment_lengths"] or [],
            row["segment_steps"] or [],
            strict=True,
        ):
            segments.append(
                TokenSegment.model_validate(
                    {"source": source, "ids": ids[start : start + length], "step_index": step}
                ).model_dump()
            )
            start += length
        data["appended"] = segments
    elif kind == "env_step":
        data["appended_ids"] = row["appended_ids"]
    return decode_record(json.dumps(data))


def iter_parquet(path: str | Path) -> list[Record]:
    """Every record of a compacted store, in written order."""
    _pa()
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    check_format(table.schema.metadata or {}, path)
    rows = table.sort_by("seq").to_pylist()
    return [_record(r) for r in rows]


def check_format(metadata: dict[bytes, bytes], path: str | Path) -> int:
    """The schema version of a compacted store; raises a clear error for foreign files."""
    if metadata.get(META_FORMAT) != FORMAT_NAME.encode():
        raise ValueError(f"{path} is not an agentkit trajectory Parquet file")
    version = int(metadata.get(META_SCHEMA, b"0"))
    if version > SCHEMA_VERSION:
        raise ValueError(
            f"{path} has schema version {version}; this agentkit reads up to {SCHEMA_VERSION}"
        )
    return version


def read_parquet(path: str | Path) -> StoreContents:
    """Read a compacted store back into the same shape as :func:`read_jsonl`."""
    return group_records(iter_parquet(path))
