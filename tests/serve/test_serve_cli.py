"""``agentkit serve``: the dry run, and a real run stopped with Ctrl-C (SIGINT)."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from agentkit.serve.cli import app

from .test_serve_process import fake_env, free_port, install_fake_sglang, wait_gone


def test_dry_run_prints_the_exact_command() -> None:
    result = CliRunner().invoke(app, ["--model", "glm-4.5-air", "--dry-run"])
    assert result.exit_code == 0, result.output
    cmd = shlex.split(result.output.strip())
    assert cmd[0] == sys.executable
    joined = " ".join(cmd[1:])
    assert joined.startswith("-m sglang.launch_server --model-path zai-org/GLM-4.5-Air ")
    for flags in (
        "--tool-call-parser glm45",
        "--reasoning-parser glm45",
        "--speculative-algorithm EAGLE",
        "--speculative-num-steps 3",
        "--speculative-eagle-topk 1",
        "--speculative-num-draft-tokens 4",
        "--tp-size 4",
        "--mem-fraction-static 0.7",
    ):
        assert flags in joined


def test_dry_run_overrides() -> None:
    args = ["--model", "glm-4.5-air", "--precision", "fp8", "--spec-steps", "1", "--port", "9000"]
    args += ["--no-speculative", "--extra", "--enable-metrics", "--dry-run"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "--speculative" not in result.output
    assert "--disable-shared-experts-fusion --enable-metrics" in result.output
    assert "--port 9000" in result.output


def test_bad_values_are_clear_errors() -> None:
    result = CliRunner().invoke(app, ["--precision", "int3", "--dry-run"])
    assert result.exit_code != 0
    assert "--precision must be one of bf16, fp8" in result.output
    result = CliRunner().invoke(app, ["--spec-draft-tokens", "9", "--dry-run"])
    assert result.exit_code != 0
    assert "num_steps + 1" in result.output


def test_serve_runs_until_ctrl_c_and_leaves_no_process(tmp_path: Path) -> None:
    root = install_fake_sglang(tmp_path / "fake")
    pid_file = tmp_path / "pids.json"
    env = {**os.environ, **fake_env(root, pid_file)}
    code = "from agentkit.serve.cli import app; app()"
    cli = [sys.executable, "-c", code, "--model", "glm-4.5-air", "--port", str(free_port())]
    proc = subprocess.Popen(cli, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if "SGLang ready at" in line:
                break
        assert any("SGLang ready at" in line for line in seen), "".join(seen)
        pids: list[int] = json.loads(pid_file.read_text())
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert "fake sglang: listening" in out
    assert wait_gone(pids) == []
