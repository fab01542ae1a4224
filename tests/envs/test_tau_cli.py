"""``agentkit tau replay`` and ``agentkit tau run``."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from agentkit.envs.cli import app
from agentkit.envs.episode import Ending, EpisodeResult
from agentkit.envs.reward import Reward
from agentkit.envs.runner import RunSummary, render_table
from tests.shared import shared_file

runner = CliRunner()


def _actions(tmp_path: Path, actions: list[dict[str, object]]) -> Path:
    path = tmp_path / "actions.json"
    path.write_text(json.dumps(actions))
    return path


def test_replay_prints_observations_and_hash(tmp_path: Path) -> None:
    data_dir = shared_file("taubench", "retail")
    gold = json.loads((data_dir / "gold_replay_test.json").read_text())
    tasks = json.loads((data_dir / "tasks_test.json").read_text())
    expected = gold["tasks"][0]
    actions = _actions(tmp_path, tasks[0]["actions"])
    result = runner.invoke(
        app,
        ["replay", "--domain", "retail", "--data-dir", str(data_dir), "--actions", str(actions)],
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["db_hash"] == expected["gt_data_hash"]
    assert printed["observations"] == [o["observation"] for o in expected["observations"]]


def test_replay_of_a_failing_action_keeps_the_initial_hash(tmp_path: Path) -> None:
    data_dir = shared_file("taubench", "airline")
    gold = json.loads((data_dir / "gold_replay_test.json").read_text())
    actions = _actions(
        tmp_path,
        [
            {"name": "cancel_reservation", "kwargs": {"reservation_id": "NOPE00"}},
            {"name": "fly", "kwargs": {}},
        ],
    )
    result = runner.invoke(
        app,
        ["replay", "--domain", "airline", "--data-dir", str(data_dir), "--actions", str(actions)],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "observations": ["Error: reservation not found", "Unknown action fly"],
        "db_hash": gold["initial_db_hash"],
    }


def test_replay_reports_bad_input_cleanly(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x"}')
    result = runner.invoke(app, ["replay", "--domain", "demo", "--actions", str(bad)])
    assert result.exit_code != 0
    assert "expected a JSON list" in result.output
    result = runner.invoke(app, ["replay", "--domain", "retail", "--actions", str(bad)])
    assert result.exit_code != 0 and "needs --data-dir" in result.output


def test_run_scripted_gold_on_demo(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = runner.invoke(
        app,
        [
            "run",
            "--domain",
            "demo",
            "--tasks",
            "0-2",
            "--trials",
            "2",
            "--concurrency",
            "4",
            "--scripted-gold",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "pass^1: 1.0000" in result.stdout and "pass^2: 1.0000" in result.stdout
    assert "infrastructure failures (not counted): 0" in result.stdout
    saved = json.loads((out / "results.json").read_text())
    assert len(saved["results"]) == 6
    lines = (out / "trajectories.jsonl").read_text().splitlines()
    assert sum('"reward":1.0' in line.replace(" ", "") for line in lines) == 6


def test_run_with_unreachable_model_reports_infrastructure_failures(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "run",
            "--domain",
            "demo",
            "--tasks",
            "0",
            "--base-url",
            "http://127.0.0.1:9",
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "infrastructure failures (not counted): 1" in result.stdout
    assert "pass^1" not in result.stdout


def test_run_needs_a_model_or_scripted_mode() -> None:
    result = runner.invoke(
        app, ["run", "--domain", "demo", "--tasks", "0"], env={"AGENTKIT_BASE_URL": ""}
    )
    assert result.exit_code != 0 and "--scripted-gold" in result.output


def _result(task: int, trial: int, reward: float | None) -> EpisodeResult:
    scored = (
        Reward(reward=reward, r_actions=reward == 1.0, data_hash="a", gt_data_hash="b")
        if reward is not None
        else None
    )
    return EpisodeResult(
        domain="d",
        task_index=task,
        trial=trial,
        episode_id=f"{task}-{trial}",
        ending=Ending.USER_STOP if scored else Ending.INFRASTRUCTURE,
        reward=scored,
        error=None if scored else "server down",
    )


def test_summary_leaves_infrastructure_failures_out_of_pass_k() -> None:
    summary = RunSummary(
        domain="d",
        task_indices=[0, 1],
        trials=3,
        results=[
            _result(0, 0, 1.0),
            _result(0, 1, 0.0),
            _result(0, 2, None),  # 1 of 2 scored
            _result(1, 0, 1.0),
            _result(1, 1, 1.0),
            _result(1, 2, 1.0),  # 3 of 3
        ],
    )
    # pass^1 = (1/2 + 3/3) / 2; pass^2 = (C(1,2)/C(2,2) + C(3,2)/C(3,2)) / 2 = 0.5; k stops at 2
    assert summary.pass_hat_k() == {1: 0.75, 2: 0.5}
    table = render_table(summary)
    assert "infrastructure failures (not counted): 1" in table
    assert "task 0 trial 2: server down" in table
