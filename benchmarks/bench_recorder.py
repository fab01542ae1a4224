"""Recorder overhead: cost per recorded step of the JSONL store, compaction and read-back.

Synthetic token-mode episodes (10 turns; 1,000-token prompt, 200-token outputs, 100-token tool
results, so the last call carries ~4,000 input ids) are recorded through ``await store.record``
under each fsync policy. A "step" is one model call plus one tool step. Run:

    nice python benchmarks/bench_recorder.py [--episodes 200]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import anyio

from agentkit.messages import ToolCall
from agentkit.trajectory.parquet import compact, read_parquet
from agentkit.trajectory.recorder import Record
from agentkit.trajectory.records import (
    EnvStepRecord,
    EpisodeEnd,
    EpisodeStart,
    EpisodeStatus,
    ModelCallRecord,
    TokenSegment,
    TokenSource,
)
from agentkit.trajectory.rows import build_rows
from agentkit.trajectory.store import FsyncPolicy, JsonlStore, read_jsonl

TURNS, PROMPT, OUTPUT, TOOL = 10, 1000, 200, 100


def episode_records(episode_id: str, rng: random.Random) -> list[Record]:
    items: list[Record] = [EpisodeStart(episode_id=episode_id, task_id="t", mode="tokens")]
    held: list[int] = []
    appended = [
        TokenSegment(source=TokenSource.PROMPT, ids=[rng.randrange(150_000) for _ in range(PROMPT)])
    ]
    for turn in range(TURNS):
        input_ids = held + [i for s in appended for i in s.ids]
        out = [rng.randrange(150_000) for _ in range(OUTPUT)]
        call = ToolCall(name="lookup", arguments={"q": turn})
        items.append(
            ModelCallRecord(
                episode_id=episode_id, index=turn, turn=turn, mode="tokens",
                input_ids=input_ids, output_ids=out,
                output_logprobs=[-rng.random() * 5 for _ in range(OUTPUT)],
                appended=appended, output_text="x" * 600, tool_calls=[call],
            )
        )  # fmt: skip
        tool = [rng.randrange(150_000) for _ in range(TOOL)]
        items.append(
            EnvStepRecord(
                episode_id=episode_id, index=turn, turn=turn, call=call,
                output="y" * 300, appended_ids=tool,
            )
        )  # fmt: skip
        held = input_ids + out
        appended = [TokenSegment(source=TokenSource.TOOL, ids=tool, step_index=turn)]
    items.append(EpisodeEnd(episode_id=episode_id, status=EpisodeStatus.COMPLETED, reward=1.0))
    return items


async def record_all(path: Path, policy: FsyncPolicy, episodes: list[list[Record]]) -> float:
    store = JsonlStore(path, fsync=policy)
    t0 = time.perf_counter()
    for items in episodes:
        for item in items:
            await store.record(item)
    elapsed = time.perf_counter() - t0
    store.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--episodes", type=int, default=200)
    args = parser.parse_args()
    rng = random.Random(0)
    episodes = [episode_records(f"ep_{i}", rng) for i in range(args.episodes)]
    steps = args.episodes * TURNS
    records = sum(len(e) for e in episodes)
    print(f"{args.episodes} episodes, {steps} steps, {records} records")
    with tempfile.TemporaryDirectory() as tmp:
        for policy in FsyncPolicy:
            path = Path(tmp) / f"{policy.value}.jsonl"
            elapsed = anyio.run(record_all, path, policy, episodes)
            print(
                f"record fsync={policy.value:8s} {elapsed / steps * 1e6:8.1f} us/step "
                f"{steps / elapsed:9.0f} steps/s  {path.stat().st_size / 1e6:7.1f} MB"
            )
        path = Path(tmp) / "never.jsonl"
        t0 = time.perf_counter()
        contents = read_jsonl(path)
        t_read = time.perf_counter() - t0
        t0 = time.perf_counter()
        out = compact(path)
        t_compact = time.perf_counter() - t0
        t0 = time.perf_counter()
        back = read_parquet(out)
        t_pread = time.perf_counter() - t0
        assert len(back.episodes) == len(contents.episodes)
        t0 = time.perf_counter()
        n_rows = sum(len(build_rows(t)) for t in contents.episodes)
        t_rows = time.perf_counter() - t0
        print(f"read jsonl      {t_read / steps * 1e6:8.1f} us/step")
        print(
            f"compact         {t_compact / steps * 1e6:8.1f} us/step  parquet {out.stat().st_size / 1e6:.1f} MB"
        )
        print(f"read parquet    {t_pread / steps * 1e6:8.1f} us/step")
        print(f"build rows      {t_rows / n_rows * 1e3:8.2f} ms/row ({n_rows} rows)")


if __name__ == "__main__":
    main()
