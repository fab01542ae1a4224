"""``agentkit --version``, shell completion, and plain errors without a terminal.

Run as a user runs the command (a subprocess, stderr not a terminal); completion is driven
through bash so that typer's shell detection sees a real shell as the parent process.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "agentkit.cli"]


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        CLI + args,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def _in_bash(args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # Two commands, so that bash stays the parent (a lone command would be exec'd in its place)
    command = " ".join([*CLI, args]) + "; exit $?"
    return subprocess.run(
        ["bash", "-c", command],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
    )


def test_version_is_the_installed_distributions() -> None:
    result = _run(["--version"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"agentkit {md.version('agentkit')}"


def _complete(words: str) -> list[str]:
    """What bash completion offers for the last word of ``words`` (typer's bash protocol)."""
    parts = words.split(" ")
    result = _run(
        [],
        env={
            "_AGENTKIT_COMPLETE": "complete_bash",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(parts) - 1),
        },
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_completion_offers_commands_and_mounted_subcommands() -> None:
    assert _complete("agentkit ex") == ["export"]
    offered = _complete("agentkit ")
    assert {"run", "export", "rollout", "testing", "tau"} <= set(offered)
    assert "replay" in _complete("agentkit tau ")
    assert "--version" in _complete("agentkit --")


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_show_and_install_completion_for_bash(tmp_path: Path) -> None:
    shown = _in_bash("--show-completion", {"HOME": str(tmp_path)})
    assert shown.returncode == 0, shown.stderr
    assert "complete -o default -F _agentkit_completion agentkit" in shown.stdout

    installed = _in_bash("--install-completion", {"HOME": str(tmp_path)})
    assert installed.returncode == 0, installed.stderr
    script = tmp_path / ".bash_completions" / "agentkit.sh"
    assert script.read_text().strip() == shown.stdout.strip()
    assert str(script) in (tmp_path / ".bashrc").read_text()


@pytest.mark.parametrize("columns", ["40", "200"])
def test_errors_are_one_plain_line_without_a_terminal(tmp_path: Path, columns: str) -> None:
    store = tmp_path / "s.jsonl"
    store.write_text("")
    result = _run(["export", str(store), str(tmp_path / "o"), "-f", "csv"], {"COLUMNS": columns})
    assert result.returncode == 2
    assert "\u256d" not in result.stderr and "\u2502" not in result.stderr  # no rich box
    [line] = [x for x in result.stderr.splitlines() if x.startswith("Error:")]
    assert line.endswith("slime, verl, sft, hf")


@pytest.mark.parametrize("columns", ["30", "200"])
@pytest.mark.parametrize("entry", ["viewer", "trajectory"])
def test_every_entry_point_prints_one_plain_error_line(
    tmp_path: Path, columns: str, entry: str
) -> None:
    # the module entry points besides `agentkit` (python -m ...), whatever width COLUMNS claims
    store = tmp_path / "s.jsonl"
    store.write_text("")
    if entry == "viewer":
        args = ["-m", "agentkit.trajectory.viewer", str(tmp_path / "nope.jsonl")]
        ending = "nope.jsonl"
    else:
        args = ["-m", "agentkit.trajectory.cli", "export", str(store), str(tmp_path / "o")]
        args += ["-f", "csv"]
        ending = "slime, verl, sft, hf"
    result = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": columns},
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2, result.stderr
    assert "\u256d" not in result.stderr and "\u2502" not in result.stderr  # no rich box
    [line] = [x for x in result.stderr.splitlines() if x.startswith("Error:")]
    assert line.rstrip().rstrip("'\".").endswith(ending), line
