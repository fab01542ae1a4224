"""Code tools: each one through ``Tool.call`` against a real sandbox, errors as observations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from agentkit.tool import RunContext, Tool, ToolStatus
from agentkit_sandboxes.docker_sandbox import DockerSandbox
from agentkit_tools.code import _has_ab_prefix, code_tools

pytestmark = pytest.mark.anyio


def by_name(tools: list[Tool]) -> dict[str, Tool]:
    return {t.name: t for t in tools}


def ctx(deps: Any = None) -> RunContext[Any]:
    return RunContext(deps=deps)


def test_tool_set_and_schemas() -> None:
    tools = by_name(code_tools())
    assert set(tools) == {
        "run_python",
        "run_shell",
        "read_file",
        "write_file",
        "edit_file",
        "apply_patch",
        "list_files",
        "run_tests",
    }
    for item in tools.values():
        schema = item.schema()["function"]
        assert schema["description"]
        assert "ctx" not in schema["parameters"]["properties"]
    assert tools["edit_file"].parameters["required"] == ["path", "old", "new"]


async def test_without_a_sandbox_the_model_gets_an_error() -> None:
    outcome = await by_name(code_tools())["run_shell"].call({"command": "ls"}, ctx(deps=None))
    assert outcome.status is ToolStatus.ERROR
    assert "no sandbox" in outcome.output


def test_patch_prefix_detection() -> None:
    assert _has_ab_prefix("--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n")
    assert not _has_ab_prefix("--- x.py\n+++ x.py\n@@ -1 +1 @@\n")
    assert _has_ab_prefix("--- /dev/null\n+++ b/new.py\n@@ -0,0 +1 @@\n")


@pytest.mark.docker
async def test_run_python_and_shell(sandbox: DockerSandbox) -> None:
    tools = by_name(code_tools(sandbox))
    ok = await tools["run_python"].call({"code": "print(sum(range(10)))"}, ctx())
    assert ok.status is ToolStatus.OK
    assert ok.output == "exit code: 0\nstdout:\n45"
    failing = await tools["run_shell"].call({"command": "echo bad >&2; exit 4"}, ctx())
    assert failing.status is ToolStatus.OK  # a failed command is an observation, not a tool error
    assert failing.output.startswith("exit code: 4")
    assert "stderr:\nbad" in failing.output
    slow = await tools["run_shell"].call({"command": "sleep 30", "timeout": 1}, ctx())
    assert "exit code: 137" in slow.output and "timed out" in slow.output


@pytest.mark.docker
async def test_files_edit_and_list(sandbox: DockerSandbox) -> None:
    # bound through deps this time, as one agent serving many runs would
    tools = by_name(code_tools())
    run = ctx(deps=sandbox)
    wrote = await tools["write_file"].call(
        {"path": "src/calc.py", "content": "def add(a, b):\n    return a - b\n"}, run
    )
    assert wrote.ok, wrote.output
    read = await tools["read_file"].call({"path": "src/calc.py"}, run)
    assert read.output == "def add(a, b):\n    return a - b\n"
    line = await tools["read_file"].call({"path": "src/calc.py", "start_line": 2}, run)
    assert line.output == "    return a - b\n"
    edited = await tools["edit_file"].call(
        {"path": "src/calc.py", "old": "return a - b", "new": "return a + b"}, run
    )
    assert edited.ok and "replaced 1" in edited.output
    check = await tools["run_python"].call(
        {"code": "import sys; sys.path.insert(0, 'src'); import calc; print(calc.add(2, 3))"}, run
    )
    assert check.output.endswith("stdout:\n5")
    listing = await tools["list_files"].call({"recursive": True}, run)
    assert listing.output.splitlines() == ["src/", "src/calc.py  32"]


@pytest.mark.docker
async def test_errors_come_back_as_observations(sandbox: DockerSandbox) -> None:
    tools = by_name(code_tools(sandbox))
    missing = await tools["read_file"].call({"path": "nope.py"}, ctx())
    assert missing.status is ToolStatus.ERROR
    assert missing.output == "Error: nope.py: no such file"
    await tools["write_file"].call({"path": "d.py", "content": "x = 1\nx = 1\n"}, ctx())
    ambiguous = await tools["edit_file"].call({"path": "d.py", "old": "x = 1", "new": "y"}, ctx())
    assert "occurs 2 times" in ambiguous.output
    absent = await tools["edit_file"].call({"path": "d.py", "old": "zzz", "new": "y"}, ctx())
    assert "not found" in absent.output
    outside = await tools["write_file"].call({"path": "/etc/passwd", "content": "x"}, ctx())
    assert outside.status is ToolStatus.ERROR and "outside the work dir" in outside.output
    no_dir = await tools["list_files"].call({"path": "ghost"}, ctx())
    assert no_dir.output == "Error: ghost: no such directory"
    bad_args = await tools["run_shell"].call({"cmd": "ls"}, ctx())
    assert bad_args.status is ToolStatus.INVALID_ARGUMENTS


@pytest.mark.docker
async def test_apply_patch_all_or_nothing(sandbox: DockerSandbox) -> None:
    tools = by_name(code_tools(sandbox))
    await sandbox.write_file("a.py", "one\ntwo\nthree\n")
    await sandbox.write_file("b.py", "alpha\n")
    good = (
        "--- a/a.py\n+++ b/a.py\n@@ -1,3 +1,3 @@\n one\n-two\n+TWO\n three\n"
        "--- a/b.py\n+++ b/b.py\n@@ -1 +1 @@\n-alpha\n+beta\n"
    )
    applied = await tools["apply_patch"].call({"diff": good}, ctx())
    assert applied.ok, applied.output
    assert await sandbox.read_file("a.py") == b"one\nTWO\nthree\n"
    assert await sandbox.read_file("b.py") == b"beta\n"
    half_bad = (
        "--- a.py\n+++ a.py\n@@ -1,3 +1,3 @@\n one\n-TWO\n+2\n three\n"
        "--- b.py\n+++ b.py\n@@ -1 +1 @@\n-gamma\n+delta\n"
    )
    rejected = await tools["apply_patch"].call({"diff": half_bad}, ctx())
    assert rejected.status is ToolStatus.ERROR
    assert "nothing was changed" in rejected.output
    assert await sandbox.read_file("a.py") == b"one\nTWO\nthree\n"
    not_a_diff = await tools["apply_patch"].call({"diff": "hello"}, ctx())
    assert "not a unified diff" in not_a_diff.output


@dataclass
class Deps:
    sandbox: DockerSandbox


@pytest.mark.docker
async def test_run_tests_reports_failures_then_success(sandbox: DockerSandbox) -> None:
    tools = by_name(code_tools())
    run = ctx(deps=Deps(sandbox))
    await sandbox.write_file("test_x.py", "def test_x():\n    assert 1 + 1 == 3\n")
    failed = await tools["run_tests"].call({}, run)
    assert failed.output.startswith("exit code: 1")
    assert "1 failed" in failed.output
    await sandbox.write_file("test_x.py", "def test_x():\n    assert 1 + 1 == 2\n")
    passed = await tools["run_tests"].call({"target": "test_x.py"}, run)
    assert passed.output.startswith("exit code: 0")
    assert "1 passed" in passed.output
    assert [e.path for e in await sandbox.list_files()] == ["test_x.py"]  # no cache dirs left


# --- each tool alone: the module-level Tool objects, with the sandbox passed as deps -----------


@pytest.mark.docker
async def test_run_python_alone(sandbox: DockerSandbox) -> None:
    from agentkit_tools.code import run_python

    outcome = await run_python.call({"code": "print(6 * 7)"}, ctx(deps=sandbox))
    assert outcome.output == "exit code: 0\nstdout:\n42"
    too_long = await run_python.call({"code": "#" * 130_000}, ctx(deps=sandbox))
    assert too_long.status is ToolStatus.ERROR and "code too long" in too_long.output


@pytest.mark.docker
async def test_run_shell_alone(sandbox: DockerSandbox) -> None:
    from agentkit_tools.code import run_shell

    outcome = await run_shell.call({"command": "echo $((6 * 7))"}, ctx(deps=Deps(sandbox)))
    assert outcome.output == "exit code: 0\nstdout:\n42"
    negative = await run_shell.call({"command": "true", "timeout": 0}, ctx(deps=sandbox))
    assert negative.status is ToolStatus.ERROR and "timeout must be positive" in negative.output


@pytest.mark.docker
async def test_read_file_alone(sandbox: DockerSandbox) -> None:
    from agentkit_tools.code import read_file

    await sandbox.write_file("lines.txt", "one\ntwo\nthree\nfour\n")
    part = await read_file.call({"path": "lines.txt", "start_line": 2, "end_line": 3}, ctx(sandbox))
    assert part.output == "two\nthree\n"
    outside = await read_file.call({"path": "lines.txt", "start_line": 9}, ctx(sandbox))
    assert outside.output == "Error: start_line 9 is outside 1..4"


@pytest.mark.docker
async def test_write_file_alone(sandbox: DockerSandbox) -> None:
    from agentkit_tools.code import write_file

    outcome = await write_file.call({"path": "deep/er/new.txt", "content": "héllo"}, ctx(sandbox))
    assert outcome.output == "wrote 6 bytes to deep/er/new.txt"
    assert await sandbox.read_file("deep/er/new.txt") == "héllo".encode()


@pytest.mark.docker
async def test_edit_file_alone(sandbox: DockerSandbox) -> None:
    from agentkit_tools.code import edit_file

    await sandbox.write_file("d.py", "x = 1\nx = 1\n")
    outcome = await edit_file.call(
        {"path": "d.py", "old": "x = 1", "new": "y = 2", "replace_all": True}, ctx(sandbox)
    )
    assert outcome.output == "replaced 2 occurrence(s) in d.py"
    assert await sandbox.read_file("d.py") == b"y = 2\ny = 2\n"
    empty = await edit_file.call({"path": "d.py", "old": "", "new": "z"}, ctx(sandbox))
    assert "old must not be empty" in empty.output


@pytest.mark.docker
async def test_apply_patch_alone(sandbox: DockerSandbox) -> None:
    from agentkit_tools.code import apply_patch

    new_file = "--- /dev/null\n+++ b/made.py\n@@ -0,0 +1,2 @@\n+a = 1\n+b = 2\n"
    outcome = await apply_patch.call({"diff": new_file}, ctx(sandbox))
    assert outcome.ok, outcome.output
    assert await sandbox.read_file("made.py") == b"a = 1\nb = 2\n"


@pytest.mark.docker
async def test_list_files_alone(sandbox: DockerSandbox) -> None:
    from agentkit_tools.code import list_files

    await sandbox.write_file("pkg/mod.py", "x = 1\n")
    await sandbox.write_file("pkg/__pycache__/mod.pyc", "junk")
    flat = await list_files.call({}, ctx(sandbox))
    assert flat.output.splitlines() == ["pkg/"]
    deep = await list_files.call({"path": "pkg", "recursive": True}, ctx(sandbox))
    assert "pkg/__pycache__/mod.pyc" not in deep.output
    assert "mod.py  6" in deep.output


@pytest.mark.docker
async def test_run_tests_alone_takes_the_command_from_deps(sandbox: DockerSandbox) -> None:
    from agentkit_tools.code import CodeDeps, run_tests

    deps = CodeDeps(sandbox, test_command="echo runner")
    outcome = await run_tests.call({"target": "a b.py"}, ctx(deps))
    assert outcome.output == "exit code: 0\nstdout:\nrunner a b.py"
    bound = code_tools(sandbox, test_command="echo bound").get("run_tests")
    from_factory = await bound.call({}, ctx(deps=None))
    assert from_factory.output == "exit code: 0\nstdout:\nbound"
