"""Presets that span several nodes: per-node commands, or a refusal that names the fix."""

from __future__ import annotations

import shlex

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from agentkit.serve.cli import app
from agentkit.serve.config import MultiNodeError, ServeConfig


def _flag(cmd: list[str], name: str) -> str | None:
    return cmd[cmd.index(name) + 1] if name in cmd else None


def test_single_node_presets_have_no_node_flags() -> None:
    cmd = ServeConfig.for_model("glm-4.5-air").command()
    assert "--nnodes" not in cmd
    assert "--dist-init-addr" not in cmd


def test_bf16_glm45_on_h100_needs_two_nodes_and_refuses_without_an_address() -> None:
    config = ServeConfig.for_model("glm-4.5")
    assert config.tp_size == 16
    assert config.nodes == 2
    with pytest.raises(MultiNodeError, match=r"needs 2 nodes of 8 GPUs.*--dist-init-addr"):
        config.command()


def test_per_node_commands_share_everything_but_the_rank() -> None:
    config = ServeConfig.for_model("glm-4.5", full_context=True, dist_init_addr="10.0.0.1:5000")
    commands = config.node_commands()
    assert len(commands) == 4
    for rank, cmd in enumerate(commands):
        assert _flag(cmd, "--tp-size") == "32"
        assert _flag(cmd, "--nnodes") == "4"
        assert _flag(cmd, "--node-rank") == str(rank)
        assert _flag(cmd, "--dist-init-addr") == "10.0.0.1:5000"
    stripped = [
        [a for i, a in enumerate(c) if i == 0 or c[i - 1] != "--node-rank"] for c in commands
    ]
    assert all(c == stripped[0] for c in stripped)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"tp_size": 16, "nnodes": 3}, "does not split over 3 node"),
        ({"tp_size": 16, "nnodes": 1}, "does not split over 1 node"),
        ({"tp_size": 16, "node_rank": 2, "dist_init_addr": "h:1"}, "node_rank 2"),
        ({"tp_size": 16, "dist_init_addr": "nohost"}, "HOST:PORT"),
        ({"tp_size": 16, "dist_init_addr": "h:99999"}, "HOST:PORT"),
    ],
)
def test_inconsistent_node_settings_are_rejected(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ServeConfig(model_path="m", **fields)  # type: ignore[arg-type]


def test_dry_run_prints_one_command_per_node() -> None:
    args = ["--model", "glm-4.5", "--dist-init-addr", "head:5000", "--dry-run"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0] == "# node 0 of 2"
    assert lines[2] == "# node 1 of 2"
    rank1 = shlex.split(lines[3])
    assert _flag(rank1, "--node-rank") == "1"
    assert _flag(rank1, "--nnodes") == "2"


def test_dry_run_refuses_a_multi_node_preset_without_an_address() -> None:
    result = CliRunner().invoke(app, ["--model", "glm-4.5", "--dry-run"], terminal_width=200)
    assert result.exit_code == 2
    assert "needs 2 nodes" in result.output
    assert "--dist-init-addr" in result.output


def test_h200_fits_one_node() -> None:
    result = CliRunner().invoke(app, ["--model", "glm-4.5", "--gpu", "H200", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "--nnodes" not in result.output
    assert "--tp-size 8" in result.output


def test_replicas_split_the_node_behind_a_router() -> None:
    args = ["--model", "glm-4.5-air", "--replicas", "2", "--port", "30000", "--dry-run"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("CUDA_VISIBLE_DEVICES=0,1,2,3 ")
    assert lines[1].startswith("CUDA_VISIBLE_DEVICES=4,5,6,7 ")
    assert "--port 30001" in lines[0]
    assert "--port 30002" in lines[1]
    router = shlex.split(lines[2])
    assert router[1:3] == ["-m", "sglang_router.launch_router"]
    assert _flag(router, "--port") == "30000"
    assert _flag(router, "--policy") == "manual"
    assert "http://127.0.0.1:30001" in router
    assert "http://127.0.0.1:30002" in router


def test_replicas_that_do_not_fit_the_node_are_refused() -> None:
    result = CliRunner().invoke(
        app, ["--model", "glm-4.5-air", "--replicas", "3", "--dry-run"], terminal_width=200
    )
    assert result.exit_code == 2
    assert "3 replicas of tp_size 4 need 12 GPUs" in result.output
