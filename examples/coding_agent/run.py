"""Coding agent: fix the failing test of a small repository inside a Docker sandbox.

The repository (``repo/`` beside this file, or any directory) is copied into a hardened
container and committed to a scratch git repository there. The agent inspects it, edits the code
and runs the tests with the code tools until they pass; the ``git diff`` is the output. Nothing
runs on the host.

    python examples/coding_agent/run.py                      # scripted model (SGLang test server)
    python examples/coding_agent/run.py --model-url URL      # a real SGLang server with GLM-4.5

Needs a Docker engine and the sandbox image (``agentkit sandbox build-image``).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from agentkit import Agent, RunResult
from agentkit.models import Model, SGLangChat
from agentkit.testing import PolicyRequest, SGLangTestServer
from agentkit_sandboxes.config import SandboxConfig
from agentkit_sandboxes.docker_sandbox import DockerSandbox
from agentkit_sandboxes.engine import Engine
from agentkit_tools.code import DEFAULT_TEST_COMMAND, code_tools

REPO = Path(__file__).resolve().parent / "repo"

INSTRUCTIONS = """\
You are a careful software engineer working in a sandboxed repository (the current directory).
A test fails. Find the cause with the tools (list_files, read_file, run_tests), fix the code
(edit_file or apply_patch; do not change the tests), and run the tests again until they pass.
Then reply with one short paragraph saying what was wrong and what you changed."""

_GIT = "git -c user.name=agent -c user.email=agent@sandbox"


@dataclass
class FixReport:
    """What the run produced: the diff, whether the tests pass, and the agent's own result."""

    diff: str
    tests_passed: bool
    test_output: str
    result: RunResult[Any]


async def fix_repository(
    model: Model,
    repo: Path = REPO,
    *,
    sandbox: DockerSandbox | None = None,
    max_turns: int = 20,
) -> FixReport:
    """Copy ``repo`` into a sandbox (a new one unless given), let the agent fix it, return the
    diff and the final test run."""
    if sandbox is None:
        async with Engine() as engine:
            box = await DockerSandbox.create(engine, SandboxConfig())
            try:
                return await fix_repository(model, repo, sandbox=box, max_turns=max_turns)
            finally:
                await box.destroy()
    await sandbox.upload_dir(repo)
    baseline = await sandbox.exec(f"git init -q && git add -A && {_GIT} commit -q -m baseline")
    if not baseline.ok:
        raise RuntimeError("could not prepare the repository:\n" + baseline.render())
    agent: Agent[DockerSandbox, str] = Agent(
        model=model, instructions=INSTRUCTIONS, tools=code_tools(), max_turns=max_turns
    )
    result = await agent.run("The test suite fails. Please fix the code.", deps=sandbox)
    tests = await sandbox.exec(DEFAULT_TEST_COMMAND, timeout=300)
    diff = await sandbox.exec("git add -A && git diff --cached")
    return FixReport(
        diff=diff.stdout, tests_passed=tests.ok, test_output=tests.render(), result=result
    )


def _call(name: str, **arguments: str) -> str:
    args = "".join(
        f"<arg_key>{k}</arg_key>\n<arg_value>{v}</arg_value>\n" for k, v in arguments.items()
    )
    return f"<tool_call>{name}\n{args}</tool_call>"


def scripted_engineer(request: PolicyRequest) -> str:
    """A scripted stand-in for GLM-4.5 (raw completions in its tool-call format) that reads the
    observations it gets back: it fixes the bug only if the file it read shows it."""
    turn = request.assistant_turns
    last = request.last_message or {}
    seen = str(last.get("content", ""))
    if turn == 0:
        return "<think>Look at the repository first.</think>\n" + _call("list_files")
    if turn == 1:
        return "<think>Run the tests to see what fails.</think>\n" + _call("run_tests")
    if turn == 2:
        return "<think>test_add fails; read calculator.py.</think>\n" + _call(
            "read_file", path="calculator.py"
        )
    if turn == 3:
        if "return a - b" not in seen:
            return "<think>I cannot see the bug.</think>\nI could not find the bug."
        return "<think>add subtracts instead of adding.</think>\n" + _call(
            "edit_file", path="calculator.py", old="return a - b", new="return a + b"
        )
    if turn == 4:
        return "<think>Check the fix.</think>\n" + _call("run_tests")
    if "passed" in seen and "failed" not in seen:
        return (
            "<think>All tests pass.</think>\n"
            "add() subtracted its arguments; it now returns a + b and all tests pass."
        )
    return "<think>Still failing.</think>\nThe tests still fail."


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-url", default=os.environ.get("AGENTKIT_MODEL_URL"))
    parser.add_argument("--model", default=os.environ.get("AGENTKIT_MODEL_NAME", "default"))
    parser.add_argument("--repo", type=Path, default=REPO)
    args = parser.parse_args()
    if args.model_url:
        model = SGLangChat(args.model_url, model=args.model)
        try:
            report = await fix_repository(model, args.repo)
        finally:
            await model.aclose()
    else:
        print("no --model-url: using the scripted model on the SGLang test server", file=sys.stderr)
        async with SGLangTestServer(policy=scripted_engineer) as server:
            model = SGLangChat(server.base_url)
            try:
                report = await fix_repository(model, args.repo)
            finally:
                await model.aclose()
    print(report.diff)
    print(
        f"agent: {report.result.status.value} after {report.result.turns} turns: {report.result.text}"
    )
    print(f"tests pass: {report.tests_passed}")
    return 0 if report.tests_passed else 1


if __name__ == "__main__":
    sys.exit(anyio.run(main))
