"""slime's debug-rollout format: ``torch.save({"rollout_id": k, "samples": [Sample.to_dict()]})``.

slime writes it with ``--save-debug-rollout-data path/{rollout_id}.pt`` and reads it back with
``--load-debug-rollout-data`` (then ``--debug-train-only`` trains on it without SGLang). This
writes an agentkit store (or exported samples) in that format, so a recorded rollout can be
trained by slime directly::

    python -m agentkit.integrations.slime.pt runs/run.jsonl out/rollout_data/{rollout_id}.pt

``torch`` is needed (slime's own dependency).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentkit.trajectory.exports import ExportReport, slime_samples, trainable_episodes
from agentkit.trajectory.groups import GROUP_POLICIES, GroupPolicy
from agentkit.trajectory.store import read_store


def debug_rollout_path(path_template: str | Path, rollout_id: int) -> Path:
    """The file slime reads for ``rollout_id`` (``{rollout_id}`` in the template, as slime)."""
    return Path(str(path_template).format(rollout_id=rollout_id))


def write_debug_rollout(
    samples: Sequence[dict[str, Any]], path_template: str | Path, *, rollout_id: int = 0
) -> Path:
    """Save ``samples`` (``Sample.to_dict()``-shaped) as slime's debug rollout ``rollout_id``."""
    try:
        import torch
    except ImportError as exc:  # depends on the install
        raise ImportError("the slime .pt format needs torch (pip install torch)") from exc
    path = debug_rollout_path(path_template, rollout_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"rollout_id": rollout_id, "samples": list(samples)}, path)
    return path


def store_to_debug_rollout(
    store: str | Path,
    path_template: str | Path,
    *,
    rollout_id: int = 0,
    group_policy: GroupPolicy = "drop",
    decode: Any = None,
) -> tuple[Path, ExportReport]:
    """A trajectory store's trainable episodes as slime's debug rollout; what was left out is
    in the report (the group policy applies as in ``agentkit export``)."""
    report = ExportReport()
    episodes = trainable_episodes(read_store(store).finished, report, group_policy=group_policy)
    path = write_debug_rollout(
        slime_samples(episodes, decode=decode), path_template, rollout_id=rollout_id
    )
    return path, report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m agentkit.integrations.slime.pt",
        description="write an agentkit trajectory store as slime's debug-rollout .pt file",
    )
    parser.add_argument("store", help="run.jsonl or run.parquet")
    parser.add_argument("out", help="output path; {rollout_id} is replaced as slime does")
    parser.add_argument("--rollout-id", type=int, default=0)
    parser.add_argument("--group-policy", choices=GROUP_POLICIES, default="drop")
    args = parser.parse_args(argv)
    path, report = store_to_debug_rollout(
        args.store, args.out, rollout_id=args.rollout_id, group_policy=args.group_policy
    )
    print(
        f"wrote {report.rows} samples of {report.exported_episodes} episodes to {path}; "
        f"left out {len(report.excluded)} episodes, dropped {len(report.dropped_groups)} groups"
    )
    for group in report.dropped_groups:
        print(f"  dropped group {group.group_id}: {group.kept}/{group.expected}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
