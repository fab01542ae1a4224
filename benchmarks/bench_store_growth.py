"""Store size per episode against its length: full prefixes (before) vs appended ids (after).

    python benchmarks/bench_store_growth.py [--turns 10 50 200] [--output-tokens 120]
        [--tool-tokens 200]

A synthetic token-mode episode (:func:`agentkit.testing.long_episode.synthetic_episode`): a
400-token prompt, then per turn ``output-tokens`` generated and ``tool-tokens`` of tool result.
"Before" is every record encoded with its full ``input_ids`` (the old line format, which the
reader still accepts); "after" is what :class:`~agentkit.trajectory.store.JsonlStore` writes
now. Both are read back and checked to give the same tokens; also the compacted Parquet size.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from agentkit.testing.long_episode import synthetic_episode
from agentkit.trajectory.records import ModelCallRecord
from agentkit.trajectory.store import JsonlStore, encode_record, read_jsonl


def measure(turns: int, output_tokens: int, tool_tokens: int, folder: Path) -> dict[str, int]:
    records = synthetic_episode(turns, output_tokens=output_tokens, tool_tokens=tool_tokens)
    old = folder / f"old-{turns}.jsonl"
    old.write_bytes(b"".join(encode_record(r) for r in records))
    new = folder / f"new-{turns}.jsonl"
    with JsonlStore(new, fsync="never") as store:
        for record in records:
            store.write(record)
    want = [r.input_ids for r in records if isinstance(r, ModelCallRecord)]
    for path in (old, new):
        got = [c.input_ids for c in read_jsonl(path).episodes[0].calls]
        if got != want:
            raise SystemExit(f"{path.name}: tokens differ after reading back")
    figures = {"turns": turns, "before": old.stat().st_size, "after": new.stat().st_size}
    try:
        from agentkit.trajectory.parquet import compact

        figures["parquet"] = compact(new, folder / f"new-{turns}.parquet").stat().st_size
    except ImportError:
        figures["parquet"] = -1
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, nargs="+", default=[10, 50, 200])
    parser.add_argument("--output-tokens", type=int, default=120)
    parser.add_argument("--tool-tokens", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(t, args.output_tokens, args.tool_tokens, Path(tmp)) for t in args.turns]
    print("| turns | before (full prefixes) | after (appended ids) | after / turn | parquet |")
    print("|---:|---:|---:|---:|---:|")
    for row in rows:
        kib = lambda n: f"{n / 1024:,.0f} KiB"  # noqa: E731
        parquet = kib(row["parquet"]) if row["parquet"] >= 0 else "n/a"
        per_turn = row["after"] / row["turns"] / 1024
        print(
            f"| {row['turns']} | {kib(row['before'])} | {kib(row['after'])} "
            f"| {per_turn:.1f} KiB | {parquet} |"
        )


if __name__ == "__main__":
    main()
