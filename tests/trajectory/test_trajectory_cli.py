"""``agentkit export`` / ``compact`` / ``rollout`` command lines (the standalone typer app)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentkit.trajectory.cli import cli_app as app
from agentkit.trajectory.records import EpisodeStatus, FailureAttribution
from agentkit.trajectory.store import JsonlStore
from tests.trajectory_fakes import records_of, token_episode

runner = CliRunner()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "run.jsonl"
    episodes = [
        token_episode("a", task_id="A", seed=1),
        token_episode("b", task_id="A", sample_index=1, seed=2, reward=0.0),
        token_episode(
            "c", task_id="B", seed=3, reward=None, status=EpisodeStatus.FAILED,
            failure=FailureAttribution.INFRASTRUCTURE,
        ),
    ]  # fmt: skip
    with JsonlStore(path) as s:
        for traj in episodes:
            for item in records_of(traj):
                s.write(item)  # type: ignore[arg-type]
    return path


@pytest.mark.parametrize("fmt", ["slime", "verl", "sft", "hf"])
def test_export_each_format(store: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / ("rows.parquet" if fmt == "hf" else "rows.jsonl")
    result = runner.invoke(app, ["export", str(store), str(out), "--format", fmt])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["rows"] == 2
    assert summary["excluded"] == {"infrastructure failure": 1}
    assert out.exists()
    if fmt != "hf":
        assert len(out.read_text().splitlines()) == 2


def test_export_from_compacted_store(store: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["compact", str(store)])
    assert result.exit_code == 0, result.output
    parquet = store.with_suffix(".parquet")
    assert json.loads(result.stdout)["episodes"] == 3
    out = tmp_path / "slime.jsonl"
    result = runner.invoke(app, ["export", str(parquet), str(out), "-f", "slime"])
    assert result.exit_code == 0, result.output
    from_parquet = [json.loads(x) for x in out.read_text().splitlines()]
    out2 = tmp_path / "slime2.jsonl"
    runner.invoke(app, ["export", str(store), str(out2), "-f", "slime"])
    assert from_parquet == [json.loads(x) for x in out2.read_text().splitlines()]


def _flat(output: str) -> str:
    """The words of a CLI message, wherever a terminal of any width wrapped or boxed them."""
    return " ".join(output.replace("\u2502", " ").split())


def test_bad_format_and_missing_store_are_clear_errors(store: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", str(store), str(tmp_path / "x"), "--format", "csv"])
    assert result.exit_code != 0
    assert "slime, verl, sft, hf" in _flat(result.output)
    result = runner.invoke(app, ["export", str(tmp_path / "nope.jsonl"), str(tmp_path / "x")])
    assert result.exit_code != 0
    assert "does not exist" in _flat(result.output)


def test_cli_errors_are_one_line_at_any_terminal_width(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No box and no wrapping: the whole message on one line, at 40 columns as at 200."""
    lines = set()
    for columns in ("40", "200"):
        monkeypatch.setenv("COLUMNS", columns)
        result = runner.invoke(app, ["export", str(store), str(tmp_path / "x"), "-f", "csv"])
        assert result.exit_code == 2
        [line] = [x for x in result.output.splitlines() if "slime, verl, sft, hf" in x]
        lines.add(line)
    assert len(lines) == 1


def test_rollout_rejects_a_bad_agent_spec(tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text('{"id": "t0", "prompt": "hi"}\n')
    result = runner.invoke(
        app,
        ["rollout", "--agent", "no_colon", "--tasks", str(tasks), "--store", str(tmp_path / "s")],
    )
    assert result.exit_code != 0
    assert "package.module:attribute" in result.output
