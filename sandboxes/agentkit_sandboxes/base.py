"""The async ``Sandbox`` protocol and the result models every sandbox returns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict


class SandboxError(RuntimeError):
    """A sandbox operation failed (the container is gone, a file is missing, ...)."""


class ExecResult(BaseModel):
    """What one command did: exit code, captured output and every limit it ran into."""

    model_config = ConfigDict(frozen=True)

    exit_code: int | None
    """The process's exit code; 137 (128 + SIGKILL) when it was killed; None if it never ran."""
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False
    """The command ran past its timeout and every process it started was killed."""
    truncated: bool = False
    """Output passed the byte limit: the middle was cut (``stdout_bytes``/``stderr_bytes`` are the
    full sizes)."""
    stdout_bytes: int = 0
    stderr_bytes: int = 0
    oom_killed: bool = False
    """A process hit the sandbox's memory limit and the kernel killed it."""
    pids_limit_hit: bool = False
    """A fork failed at the sandbox's process limit (a fork bomb); the sandbox was reset."""
    restarted: bool = False
    """Processes could not be killed any other way: the container was restarted, and the work
    dir (a tmpfs) was emptied."""
    disk_full: bool = False
    """The writable work dir or /tmp is full."""
    killed_processes: int = 0
    """Processes of the sandbox killed after the command (timeout, process limit, a runner
    that died), whatever they did to detach; none was left alive unless ``error`` says so."""
    error: str | None = None
    """The sandbox could not run or watch the command to its end (its runner died, a protocol
    error, processes that would not die): the outcome is unknown and the command was not re-run."""
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        """Exit code 0 and no limit hit, no timeout, no error: the only success."""
        return self.exit_code == 0 and not (
            self.timed_out
            or self.oom_killed
            or self.pids_limit_hit
            or self.disk_full
            or self.restarted
            or self.error
        )

    def notes(self) -> list[str]:
        """One sentence per limit the command ran into, for the model to read."""
        out: list[str] = []
        if self.error:
            out.append(f"sandbox error: {self.error}")
        if self.timed_out:
            out.append("the command timed out and all its processes were killed")
        if self.oom_killed:
            out.append("a process was killed for exceeding the sandbox memory limit")
        if self.pids_limit_hit:
            out.append(
                "the sandbox process limit was reached (too many processes); they were killed"
            )
        if self.restarted:
            out.append("the sandbox had to be restarted: its files were lost")
        if self.disk_full:
            out.append("the sandbox disk is full")
        if self.killed_processes:
            out.append(f"{self.killed_processes} process(es) left in the sandbox were killed")
        if self.truncated:
            out.append(
                f"output was truncated (stdout {self.stdout_bytes} bytes, stderr {self.stderr_bytes} bytes)"
            )
        return out

    def render(self) -> str:
        """The observation a model sees: exit code, notes, stdout and stderr."""
        code = "none" if self.exit_code is None else str(self.exit_code)
        parts = [f"exit code: {code}"]
        if self.exit_code == 0 and not self.ok:
            parts.append("status: failed (see the notes)")
        parts += [f"note: {n}" for n in self.notes()]
        if self.stdout:
            parts.append("stdout:\n" + self.stdout.rstrip("\n"))
        if self.stderr:
            parts.append("stderr:\n" + self.stderr.rstrip("\n"))
        if not self.stdout and not self.stderr:
            parts.append("(no output)")
        return "\n".join(parts)


class FileEntry(BaseModel):
    """One entry of a directory listing (``path`` relative to the listed directory)."""

    model_config = ConfigDict(frozen=True)

    path: str
    kind: Literal["file", "dir", "link", "other"]
    size: int = 0


@runtime_checkable
class Sandbox(Protocol):
    """An isolated place to run commands and keep files. Paths are relative to ``workdir``
    unless absolute."""

    @property
    def workdir(self) -> str: ...

    async def exec(
        self,
        command: str | Sequence[str],
        *,
        timeout: float | None = None,  # noqa: ASYNC109
        max_output_bytes: int | None = None,
        workdir: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ExecResult:
        """Run ``command`` (a shell string or an argv list); never raises for the command's own
        failure (non-zero exit, timeout, limits): those are in the result."""
        ...

    async def read_file(self, path: str) -> bytes:
        """The file's bytes; raises FileNotFoundError or SandboxError."""
        ...

    async def write_file(self, path: str, data: bytes | str) -> None:
        """Create or replace a file (parent directories are created)."""
        ...

    async def list_files(self, path: str = ".", *, recursive: bool = False) -> list[FileEntry]:
        """Entries under ``path``; raises FileNotFoundError if it does not exist."""
        ...

    async def upload_dir(self, local: Path, dest: str = ".") -> None:
        """Copy a host directory's contents into the sandbox."""
        ...

    async def download_dir(self, src: str, local: Path) -> None:
        """Copy a sandbox directory's contents to the host."""
        ...

    async def close(self) -> None:
        """Release the sandbox (remove the container, or give it back to its pool)."""
        ...
