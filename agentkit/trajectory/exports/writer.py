"""``export``: write one training format of a set of recorded episodes to a file."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from agentkit.trajectory.groups import GroupPolicy
from agentkit.trajectory.partial import merge_partial_rollouts
from agentkit.trajectory.records import Trajectory

from .hf import hf_table, pyarrow_module
from .selection import CutEpisodes, ExportReport, trainable_episodes
from .sft import sft_records
from .slime import Decoder, slime_samples
from .verl import verl_rows

ExportFormat = Literal["slime", "verl", "sft", "hf"]


def write_jsonl(records: Iterable[dict[str, Any]], path: str | Path) -> int:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def export(
    trajectories: Iterable[Trajectory],
    out_path: str | Path,
    fmt: ExportFormat,
    *,
    decode: Decoder | None = None,
    min_reward: float | None = None,
    group_policy: GroupPolicy = "drop",
    merge_partial: bool = True,
    cut_episodes: CutEpisodes = "drop",
) -> ExportReport:
    """Write one export format: JSONL for ``slime``/``verl``/``sft``, Parquet for ``hf``.

    RL formats first join every resumed episode to its continuation (partial rollouts, see
    :mod:`agentkit.trajectory.partial`; ``merge_partial=False`` keeps them apart, and the cut
    original is then left out as unfinished or failed), then apply ``group_policy`` to GRPO
    groups left uneven (``fail`` raises :class:`IncompleteGroupError` before anything is
    written); SFT has no groups.
    """
    report = ExportReport()
    if fmt == "sft":
        write_jsonl(sft_records(trajectories, report, min_reward=min_reward), out_path)
        return report
    if merge_partial:
        trajectories = merge_partial_rollouts(trajectories)
    episodes = trainable_episodes(
        trajectories, report, group_policy=group_policy, cut_episodes=cut_episodes
    )
    if fmt == "slime":
        write_jsonl(slime_samples(episodes, decode=decode), out_path)
    elif fmt == "verl":
        write_jsonl(verl_rows(episodes), out_path)
    elif fmt == "hf":
        pyarrow_module()
        import pyarrow.parquet as pq

        Path(out_path).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(hf_table(episodes), out_path, compression="zstd")
    else:
        raise ValueError(f"unknown export format {fmt!r} (slime, verl, sft, hf)")
    return report
