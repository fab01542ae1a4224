"""Code tools: run Python or shell, read / write / edit / patch / list files, run tests, all
inside a sandbox.

Each tool is a module-level :class:`~agentkit.tool.Tool` (``run_python``, ``run_shell``,
``read_file``, ``write_file``, ``edit_file``, ``apply_patch``, ``list_files``, ``run_tests``)
that takes its sandbox from ``ctx.deps``: a :class:`Sandbox`, or an object with a ``sandbox``
attribute (and, for ``run_tests``, an optional ``test_command`` string). So one ``Agent`` can
serve many runs, each with its own sandbox passed as ``agent.run(..., deps=sandbox)``.

``code_tools()`` groups them in a :class:`~agentkit.toolset.Toolset`; ``code_tools(sandbox)``
binds them to one sandbox (one agent, one sandbox) whatever the run's deps.

A command's own failure (non-zero exit, timeout, a limit hit) is a normal observation with the
exit code, notes and stderr; a missing file or a search string that does not match is a
``ToolError``, shown to the model as ``Error: ...``.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from agentkit.tool import DEFAULT_MAX_OUTPUT_CHARS, RunContext, ToolError, tool
from agentkit.toolset import Toolset
from agentkit_sandboxes.base import ExecResult, Sandbox, SandboxError

MAX_TIMEOUT_S = 600.0
DEFAULT_TEST_COMMAND = "python3 -m pytest -q -p no:cacheprovider"
_MAX_INLINE_BYTES = 120_000  # one exec argument / environment string must stay under 128 KiB
_HIDDEN_DIRS = {".git", "__pycache__", ".pytest_cache", "node_modules", ".venv"}
_LONG_RUNNING = MAX_TIMEOUT_S + 30  # the tool's own limit, above the command's


@dataclass(frozen=True)
class CodeDeps:
    """What the code tools use from ``ctx.deps``: a sandbox and the command ``run_tests`` runs."""

    sandbox: Sandbox
    test_command: str = DEFAULT_TEST_COMMAND


def sandbox_of(ctx: RunContext[Any]) -> Sandbox:
    """The calling run's sandbox: ``ctx.deps`` itself or ``ctx.deps.sandbox``."""
    deps = ctx.deps
    candidate = getattr(deps, "sandbox", deps)
    if not isinstance(candidate, Sandbox):
        raise ToolError(
            "no sandbox: bind one with code_tools(sandbox) or pass it as deps (or deps.sandbox)"
        )
    return candidate


def test_command_of(ctx: RunContext[Any]) -> str:
    """The command ``run_tests`` runs: ``ctx.deps.test_command`` if set, else the default."""
    command = getattr(ctx.deps, "test_command", None)
    return command if isinstance(command, str) and command.strip() else DEFAULT_TEST_COMMAND


def _clamp(timeout: float) -> float:
    if timeout <= 0:
        raise ToolError("timeout must be positive")
    return min(timeout, MAX_TIMEOUT_S)


def _observation(result: ExecResult) -> str:
    text: str = result.render()
    return text


async def _read_text(sandbox: Sandbox, path: str) -> str:
    try:
        data = await sandbox.read_file(path)
    except FileNotFoundError as exc:
        raise ToolError(f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise ToolError(f"{path}: is a directory (use list_files)") from exc
    except SandboxError as exc:
        raise ToolError(str(exc)) from exc
    try:
        text: str = data.decode("utf-8")
        return text
    except UnicodeDecodeError as exc:
        raise ToolError(f"{path}: not a UTF-8 text file ({len(data)} bytes)") from exc


async def _write_text(sandbox: Sandbox, path: str, content: str) -> None:
    try:
        await sandbox.write_file(path, content)
    except SandboxError as exc:
        raise ToolError(str(exc)) from exc


@tool(timeout=_LONG_RUNNING)
async def run_python(ctx: RunContext[Any], code: str, timeout: float = 60.0) -> str:  # noqa: ASYNC109
    """Run a Python program in the sandbox and return its exit code, stdout and stderr.

    Args:
        code: The Python source to run (python3 -c).
        timeout: Seconds before the program and its children are killed.
    """
    if len(code.encode()) > _MAX_INLINE_BYTES:
        raise ToolError("code too long: write it to a file with write_file and run that")
    box = sandbox_of(ctx)
    return _observation(await box.exec(["python3", "-c", code], timeout=_clamp(timeout)))


@tool(timeout=_LONG_RUNNING)
async def run_shell(ctx: RunContext[Any], command: str, timeout: float = 60.0) -> str:  # noqa: ASYNC109
    """Run a shell command (sh -c) in the sandbox's work dir; returns exit code and output.

    Args:
        command: The shell command line.
        timeout: Seconds before the command and its children are killed.
    """
    box = sandbox_of(ctx)
    return _observation(await box.exec(command, timeout=_clamp(timeout)))


@tool(timeout=60)
async def read_file(
    ctx: RunContext[Any], path: str, start_line: int = 1, end_line: int | None = None
) -> str:
    """Read a text file from the sandbox (optionally a range of lines, 1-based, inclusive).

    Args:
        path: File path, relative to the work dir or absolute.
        start_line: First line to return.
        end_line: Last line to return (default: the end of the file).
    """
    text = await _read_text(sandbox_of(ctx), path)
    if start_line == 1 and end_line is None:
        return text
    lines = text.splitlines(keepends=True)
    if start_line < 1 or start_line > max(len(lines), 1):
        raise ToolError(f"start_line {start_line} is outside 1..{len(lines)}")
    return "".join(lines[start_line - 1 : end_line])


@tool(timeout=60)
async def write_file(ctx: RunContext[Any], path: str, content: str) -> str:
    """Create or overwrite a file in the sandbox's work dir (parent dirs are created).

    Args:
        path: File path, relative to the work dir.
        content: The full new content of the file.
    """
    await _write_text(sandbox_of(ctx), path, content)
    return f"wrote {len(content.encode())} bytes to {path}"


@tool(timeout=60)
async def edit_file(
    ctx: RunContext[Any], path: str, old: str, new: str, replace_all: bool = False
) -> str:
    """Replace an exact piece of text in a file. ``old`` must occur exactly once unless
    replace_all is true; include enough surrounding lines to make it unique.

    Args:
        path: File path, relative to the work dir.
        old: The exact text to find (whitespace matters).
        new: The replacement text.
        replace_all: Replace every occurrence instead of requiring exactly one.
    """
    if not old:
        raise ToolError("old must not be empty (use write_file to create a file)")
    box = sandbox_of(ctx)
    text = await _read_text(box, path)
    count = text.count(old)
    if count == 0:
        raise ToolError(f"old text not found in {path}; read the file and copy it exactly")
    if count > 1 and not replace_all:
        raise ToolError(f"old text occurs {count} times in {path}; add context or set replace_all")
    await _write_text(box, path, text.replace(old, new))
    return f"replaced {count} occurrence(s) in {path}"


@tool(timeout=90)
async def apply_patch(ctx: RunContext[Any], diff: str) -> str:
    """Apply a unified diff (as from diff -u or git diff) to files in the work dir. Nothing
    is changed unless every hunk applies.

    Args:
        diff: The unified diff text.
    """
    if "@@" not in diff:
        raise ToolError("not a unified diff: no @@ hunk header")
    if len(diff.encode()) > _MAX_INLINE_BYTES:
        raise ToolError("diff too long: split it into smaller patches")
    strip = 1 if _has_ab_prefix(diff) else 0
    # GNU patch when the image has it (busybox sh would pick its own, simpler applet)
    script = (
        f"if [ -x /usr/bin/patch ]; then P='/usr/bin/patch --batch --forward"
        f" --no-backup-if-mismatch -p{strip}'; else P='patch -N -p{strip}'; fi; "
        'printf "%s\\n" "$AGENTKIT_PATCH" | $P --dry-run >/dev/null 2>&1 '
        '|| { printf "%s\\n" "$AGENTKIT_PATCH" | $P --dry-run; exit 1; }; '
        'printf "%s\\n" "$AGENTKIT_PATCH" | $P'
    )
    box = sandbox_of(ctx)
    result = await box.exec(script, timeout=60, env={"AGENTKIT_PATCH": diff.rstrip("\n")})
    if not result.ok:  # a limit hit or a sandbox error is a failure too
        raise ToolError("patch did not apply, nothing was changed:\n" + result.render())
    return result.stdout.strip() or "patch applied"


@tool(timeout=60)
async def list_files(ctx: RunContext[Any], path: str = ".", recursive: bool = False) -> str:
    """List the files in a sandbox directory (directories end with '/'; sizes in bytes).

    Args:
        path: Directory, relative to the work dir or absolute.
        recursive: Include subdirectories (skips .git, __pycache__ and similar).
    """
    box = sandbox_of(ctx)
    try:
        entries = await box.list_files(path, recursive=recursive)
    except FileNotFoundError as exc:
        raise ToolError(f"{path}: no such directory") from exc
    except SandboxError as exc:
        raise ToolError(str(exc)) from exc
    lines = []
    for entry in entries:
        parts = entry.path.split("/")
        if any(part in _HIDDEN_DIRS for part in parts[:-1]):
            continue
        if entry.kind == "dir":
            lines.append(f"{entry.path}/")
        elif entry.kind == "link":
            lines.append(f"{entry.path} -> (link)")
        else:
            lines.append(f"{entry.path}  {entry.size}")
    return "\n".join(lines) if lines else "(empty directory)"


@tool(timeout=_LONG_RUNNING)
async def run_tests(ctx: RunContext[Any], target: str = "", timeout: float = 300.0) -> str:  # noqa: ASYNC109
    """Run the project's tests in the sandbox and return the test runner's output.

    Args:
        target: Optional test file, directory or node id to run (default: all tests).
        timeout: Seconds before the run is killed.
    """
    command = test_command_of(ctx) + (f" {shlex.quote(target)}" if target else "")
    box = sandbox_of(ctx)
    return _observation(await box.exec(command, timeout=_clamp(timeout)))


CODE_TOOLS = Toolset(
    [run_python, run_shell, read_file, write_file, edit_file, apply_patch, list_files, run_tests]
)


def code_tools(
    sandbox: Sandbox | None = None,
    *,
    test_command: str = DEFAULT_TEST_COMMAND,
    max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS,
) -> Toolset:
    """The code tools, bound to ``sandbox`` or (when None) to the sandbox in ``ctx.deps``;
    ``run_tests`` runs ``test_command``."""
    tools = CODE_TOOLS
    if sandbox is not None or test_command != DEFAULT_TEST_COMMAND:

        def resources(ctx: RunContext[Any]) -> CodeDeps:
            return CodeDeps(sandbox if sandbox is not None else sandbox_of(ctx), test_command)

        tools = tools.with_deps_from(resources)
    if max_output_chars != DEFAULT_MAX_OUTPUT_CHARS:
        tools = tools.with_limits(max_output_chars=max_output_chars)
    return tools


def _has_ab_prefix(diff: str) -> bool:
    for line in diff.splitlines():
        if line.startswith(("--- ", "+++ ")):
            name = line[4:].split("\t", 1)[0].strip()
            if name == "/dev/null":
                continue
            return name.startswith(("a/", "b/"))
    return False
