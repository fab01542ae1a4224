"""GRPO group integrity: an export never holds an uneven group without saying so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentkit.trajectory.exports import ExportReport, export, slime_samples, trainable_episodes
from agentkit.trajectory.groups import IncompleteGroupError
from agentkit.trajectory.records import EpisodeStatus, FailureAttribution, Trajectory
from tests.trajectory_fakes import token_episode


def _rollout(
    tasks: int = 4,
    n: int = 4,
    infra: tuple[str, int] = ("t1", 2),
    broken: tuple[str, int] = ("t3", 0),
) -> list[Trajectory]:
    """tasks x n samples; one sample hit a dead server, one reward function raised."""
    out: list[Trajectory] = []
    seed = 0
    for t in range(tasks):
        for k in range(n):
            seed += 1
            task = f"t{t}"
            if (task, k) == infra:
                out.append(
                    token_episode(
                        f"{task}-{k}", task_id=task, sample_index=k, seed=seed, reward=None,
                        status=EpisodeStatus.MODEL_ERROR, failure=FailureAttribution.INFRASTRUCTURE,
                    )
                )  # fmt: skip
            elif (task, k) == broken:
                out.append(
                    token_episode(
                        f"{task}-{k}", task_id=task, sample_index=k, seed=seed, reward=None,
                        status=EpisodeStatus.FAILED, failure=FailureAttribution.INFRASTRUCTURE,
                    )
                )  # fmt: skip
            else:
                out.append(
                    token_episode(
                        f"{task}-{k}", task_id=task, sample_index=k, seed=seed, reward=float(k % 2)
                    )
                )
    return out


def _group_sizes(samples: list[dict]) -> dict[str, int]:  # type: ignore[type-arg]
    sizes: dict[str, set[int]] = {}
    for s in samples:
        sizes.setdefault(s["metadata"]["group_id"], set()).add(s["metadata"]["sample_index"])
    return {g: len(v) for g, v in sizes.items()}


def test_default_drops_uneven_groups_whole_and_says_why() -> None:
    report = ExportReport()
    kept = trainable_episodes(_rollout(), report)
    samples = slime_samples(kept)
    assert _group_sizes(samples) == {"t0": 4, "t2": 4}
    assert report.group_policy == "drop"
    dropped = {g.group_id: g for g in report.dropped_groups}
    assert set(dropped) == {"t1", "t3"}
    assert (dropped["t1"].expected, dropped["t1"].kept) == (4, 3)
    assert dropped["t1"].missing_reasons == {"t1-2": "infrastructure failure"}
    reasons = {x.episode_id: x.reason for x in report.excluded}
    assert reasons["t1-0"].startswith("group incomplete: t1 has 3 of 4")
    assert reasons["t3-0"] == "infrastructure failure"
    assert report.exported_episodes == 8
    assert report.rows == len(samples) == 8


def test_flag_keeps_uneven_groups_marked() -> None:
    report = ExportReport()
    samples = slime_samples(trainable_episodes(_rollout(), report, group_policy="flag"))
    assert _group_sizes(samples) == {"t0": 4, "t1": 3, "t2": 4, "t3": 3}
    flagged = {s["metadata"]["group_id"] for s in samples if s["metadata"]["group_incomplete"]}
    assert flagged == {"t1", "t3"}
    assert {g.group_id for g in report.flagged_groups} == {"t1", "t3"}
    assert report.dropped_groups == []


def test_fail_refuses_before_writing(tmp_path: Path) -> None:
    out = tmp_path / "slime.jsonl"
    with pytest.raises(IncompleteGroupError, match=r"t1 \(3/4\)"):
        export(_rollout(), out, "slime", group_policy="fail")
    assert not out.exists()


def test_whole_groups_pass_every_policy(tmp_path: Path) -> None:
    whole = _rollout(infra=("none", 0), broken=("none", 0))
    for policy in ("drop", "flag", "fail"):
        report = export(whole, tmp_path / f"{policy}.jsonl", "verl", group_policy=policy)  # type: ignore[arg-type]
        assert report.dropped_groups == report.flagged_groups == []
        rows = [json.loads(x) for x in (tmp_path / f"{policy}.jsonl").read_text().splitlines()]
        assert len(rows) == 16
        assert not any(r["extra_fields"]["group_incomplete"] for r in rows)


def test_recorded_group_size_catches_a_sample_the_store_never_saw() -> None:
    episodes = [
        token_episode(f"g-{k}", task_id="g", sample_index=k, seed=k + 1, reward=1.0)
        for k in range(3)
    ]
    for traj in episodes:
        traj.start.metadata["group_size"] = 4
    report = ExportReport()
    assert trainable_episodes(episodes, report) == []
    (group,) = report.dropped_groups
    assert (group.expected, group.kept) == (4, 3)
    assert group.missing_reasons == {"sample 3": "never recorded"}


def test_cli_reports_dropped_groups(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from agentkit.trajectory.cli import cli_app as app
    from agentkit.trajectory.store import JsonlStore

    store = tmp_path / "run.jsonl"
    with JsonlStore(store) as writer:
        for traj in _rollout():
            writer.write(traj.start)
            for item in traj.items():
                writer.write(item)
            assert traj.end is not None
            writer.write(traj.end)
    runner = CliRunner()
    ok = runner.invoke(app, ["export", str(store), str(tmp_path / "o.jsonl"), "-f", "slime"])
    assert ok.exit_code == 0, ok.output
    summary = json.loads(ok.output.strip().splitlines()[-1])
    assert [g["group_id"] for g in summary["dropped_groups"]] == ["t1", "t3"]
    bad = runner.invoke(
        app,
        ["export", str(store), str(tmp_path / "p.jsonl"), "--group-policy", "fail"],
    )
    assert bad.exit_code == 1
    assert not (tmp_path / "p.jsonl").exists()


def test_a_rerun_sample_replaces_its_interrupted_attempt() -> None:
    episodes = [
        token_episode("g-0", task_id="g", sample_index=0, seed=1, reward=1.0),
        token_episode("g-1-killed", task_id="g", sample_index=1, seed=2, finished=False),
        token_episode("g-1", task_id="g", sample_index=1, seed=3, reward=0.0),
    ]
    report = ExportReport()
    kept = trainable_episodes(episodes, report)
    assert [e.trajectory.episode_id for e in kept] == ["g-0", "g-1"]
    assert report.dropped_groups == []
    assert {x.episode_id: x.reason for x in report.excluded} == {"g-1-killed": "unfinished"}


def test_cut_episodes_are_dropped_or_exported_as_aborted() -> None:
    whole = token_episode("g-0", task_id="g", sample_index=0, seed=1, reward=1.0)
    cut = token_episode("g-1", task_id="g", sample_index=1, seed=2, finished=False)
    dropped = ExportReport()
    assert [e.trajectory.episode_id for e in trainable_episodes([whole, cut], dropped)] == []
    assert {x.episode_id: x.reason for x in dropped.excluded}["g-1"] == "unfinished"

    report = ExportReport()
    kept = trainable_episodes([whole, cut], report, cut_episodes="aborted")
    assert report.aborted_episodes == 1
    assert report.dropped_groups == []
    part = next(e for e in kept if e.aborted)
    assert part.reward == 0.0
    assert len(part.trajectory.calls) < len(cut.calls)  # only the complete calls
    last = part.trajectory.calls[-1]
    (sample,) = [s for s in slime_samples(kept) if s["session_id"] == "g-1"]
    assert sample["status"] == "aborted"
    assert sample["tokens"] == (last.input_ids or []) + (last.output_ids or [])
    assert sum(sample["loss_mask"]) == sum(len(c.output_ids or []) for c in part.trajectory.calls)
