"""Settings of a Docker sandbox, hardened by default, and the labels that mark its containers."""

from __future__ import annotations

import os
import re
import socket

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .egress import EgressPolicy

DEFAULT_IMAGE = "agentkit/sandbox:bookworm"
LABEL = "agentkit.sandbox"
LABEL_OWNER_PID = "agentkit.owner_pid"
LABEL_OWNER_HOST = "agentkit.owner_host"
LABEL_OWNER_BOOT = "agentkit.owner_boot"
LABEL_OWNER_START = "agentkit.owner_start"
LABEL_POOL = "agentkit.pool"

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgKMG]?)[bB]?\s*$")


def parse_size(text: str) -> int:
    """``"256m"`` -> bytes (k, m, g are powers of 1024)."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"not a size: {text!r} (use e.g. 512k, 256m, 1g)")
    number, unit = float(match.group(1)), match.group(2).lower()
    return int(number * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit])


class SandboxConfig(BaseModel):
    """How a sandbox container is made. The defaults are the hardened ones: no network, read-only
    root, every capability dropped, no-new-privileges, non-root, memory / CPU / process limits.
    Only ``network`` opens anything, and only when set."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    image: str = DEFAULT_IMAGE
    network: str = "none"
    """Docker network mode. ``"none"`` (default) gives only loopback; naming a network is the
    explicit opt-in to network access."""
    memory: str = "512m"
    """Memory limit (swap is not allowed beyond it)."""
    cpus: float = Field(default=1.0, gt=0)
    pids: int = Field(default=128, ge=8)
    """Maximum number of processes and threads in the container (stops fork bombs)."""
    work_size: str = "256m"
    """Size of the writable work dir (a tmpfs volume on ``workdir``)."""
    tmp_size: str = "64m"
    workdir: str = "/work"
    job_user: str = "65534:65534"
    """User that runs commands (nobody)."""
    keeper_user: str = "65532:65532"
    """User of the container's idle main process; differs from ``job_user`` so a reset that kills
    every job process leaves the container running."""
    exec_timeout: float = Field(default=60.0, gt=0)
    """Default timeout of one command, in seconds."""
    max_output_bytes: int = Field(default=64_000, ge=256)
    """Default limit of captured stdout and stderr, each."""
    env: dict[str, str] = Field(
        default_factory=lambda: {
            "HOME": "/tmp",
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    labels: dict[str, str] = Field(default_factory=dict)
    egress: EgressPolicy | None = None
    """Network opt-in with an allow-list: the sandbox stays on ``network="none"`` and reaches
    only the allowed hosts, through a proxy container (see ``sandboxes/agentkit_sandboxes/egress.py``)."""

    @model_validator(mode="after")
    def _check_egress(self) -> SandboxConfig:
        if self.egress is not None and self.network != "none":
            raise ValueError("egress= keeps the sandbox offline: leave network='none'")
        return self

    def command_env(self) -> dict[str, str]:
        """The environment every command starts with (``env`` plus the egress proxy's)."""
        return {**(self.egress.env() if self.egress else {}), **self.env}

    @field_validator("memory", "work_size", "tmp_size")
    @classmethod
    def _check_size(cls, value: str) -> str:
        parse_size(value)
        return value

    @field_validator("workdir")
    @classmethod
    def _check_workdir(cls, value: str) -> str:
        if not value.startswith("/") or value.rstrip("/") in ("", "/tmp"):
            raise ValueError("workdir must be an absolute path other than / and /tmp")
        return value.rstrip("/")

    @field_validator("network")
    @classmethod
    def _check_network(cls, value: str) -> str:
        if value == "host":
            raise ValueError("network='host' would share the host's network stack; not allowed")
        return value


def boot_id() -> str:
    """This machine's boot id ("" when the kernel does not expose one)."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def process_start(pid: int) -> str:
    """A process's start time in clock ticks since boot ("" if it does not exist or is hidden);
    with the boot id it names one process even after its pid is reused."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            stat = handle.read()
    except OSError:
        return ""
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else ""


def owner_labels() -> dict[str, str]:
    """Labels naming this process as the owner, used to reap containers of dead owners: host,
    pid, boot id and the pid's start time (so a reused pid is not taken for the owner)."""
    pid = os.getpid()
    return {
        LABEL: "1",
        LABEL_OWNER_PID: str(pid),
        LABEL_OWNER_HOST: socket.gethostname(),
        LABEL_OWNER_BOOT: boot_id(),
        LABEL_OWNER_START: process_start(pid),
    }


def owner_is_alive(labels: dict[str, str]) -> bool:
    """Whether the process that made a container still runs. Other hosts: assume yes. Here: the
    boot must be the same, the pid must exist and, when recorded, started at the same tick."""
    if labels.get(LABEL_OWNER_HOST) != socket.gethostname():
        return True
    boot = labels.get(LABEL_OWNER_BOOT, "")
    if boot and boot_id() and boot != boot_id():
        return False
    try:
        pid = int(labels.get(LABEL_OWNER_PID, ""))
    except ValueError:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    start = labels.get(LABEL_OWNER_START, "")
    return not start or process_start(pid) in ("", start)
