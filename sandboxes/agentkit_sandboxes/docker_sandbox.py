"""``DockerSandbox``: a hardened container driven over the Engine API.

The container idles as a keeper user; commands run as a different job user through the
in-container runner (``runner_inside.py``, one attached ``docker exec``), whose result channel
the commands cannot reach. Without python3 in the image each command is its own ``docker exec``
(``direct_exec.py``). A command runs at most once: if the runner dies under it, the result says
so (``error``), every job process is killed and a new runner serves the next command. A timeout
or a pid-limit hit kills every job process, verified; if processes survive, the container is
restarted.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import anyio
from pydantic import BaseModel, ConfigDict, ValidationError

from .base import ExecResult, SandboxError
from .config import LABEL_POOL, SandboxConfig, owner_labels, parse_size
from .direct_exec import exec_direct, kill_job_processes, run_exec
from .egress import SOCKET as EGRESS_SOCKET
from .egress import SOCKET_DIR, start_proxy, stop_proxy
from .engine import Engine, EngineError
from .reaper import reap_orphans
from .runner import Runner, RunnerGone
from .sandbox_files import SandboxFiles

__all__ = ["DockerSandbox", "reap_orphans"]

RESET_PATHS = ("/tmp", "/dev/shm", "/dev/mqueue")
"""Writable places besides the work dir, emptied between leases."""


class _Reply(BaseModel):
    """A runner's answer to one command (validated: a malformed one fails that command)."""

    model_config = ConfigDict(extra="ignore")

    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    stdout_bytes: int = 0
    stderr_bytes: int = 0
    truncated: bool = False
    timed_out: bool = False
    oom: bool = False
    pids: bool = False
    disk_full: bool = False
    killed: int = 0
    left: int = 0
    error: str | None = None


def _argv(command: str | Sequence[str]) -> list[str]:
    if isinstance(command, str):
        return ["/bin/sh", "-c", command]
    argv = list(command)
    if not argv:
        raise ValueError("empty command")
    return argv


_WAIT_FOR_EGRESS = """
import os, socket, sys, time
deadline = time.monotonic() + 25
while True:
    try:
        if not os.path.exists(sys.argv[2]):
            raise OSError("the proxy's socket is not there yet")
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit(1)
        time.sleep(0.05)
"""


class DockerSandbox(SandboxFiles):
    """One hardened container. Create with :meth:`create` (or take one from a
    :class:`~agentkit_sandboxes.pool.SandboxPool`); ``close()`` removes it (or returns it to its
    pool)."""

    def __init__(
        self, engine: Engine, config: SandboxConfig, container_id: str, volume: str
    ) -> None:
        self.engine = engine
        self.config = config
        self.container_id = container_id
        self.volume = volume
        self.closed = False
        self.uses = 0
        self.leases = 0
        self._on_close: Callable[[DockerSandbox], Awaitable[None]] | None = None
        self._runner: Runner | None = None
        self._runner_failures = 0
        self._counters: dict[str, int] = {}
        """The cgroup's counters after the last direct exec (see ``exec_direct``)."""
        self.use_runner = True
        """Run commands through the in-container runner (fast); False: one docker exec each."""

    def __repr__(self) -> str:
        return f"DockerSandbox({self.container_id[:12]})"

    # --- lifecycle ---------------------------------------------------------------------------

    @classmethod
    async def create(
        cls, engine: Engine, config: SandboxConfig | None = None, *, pool: str | None = None
    ) -> DockerSandbox:
        """Create and start a container (and its work-dir volume)."""
        config = config or SandboxConfig()
        labels = {**config.labels, **owner_labels()}
        if pool:
            labels[LABEL_POOL] = pool
        name = f"agentkit-sbx-{secrets.token_hex(6)}"
        uid, _, gid = config.job_user.partition(":")
        opts = f"size={parse_size(config.work_size)},uid={uid},gid={gid or uid},mode=0700"
        try:
            if config.egress is not None:
                await start_proxy(engine, config.egress, config.image, labels, f"{name}-egress")
            await engine.volume_create(name, labels, opts)
            cid = await engine.container_create(name, container_spec(config, labels, name))
        except BaseException as exc:
            with anyio.CancelScope(shield=True):  # also when cancelled mid-way: leave nothing
                await engine.container_remove(name)
                await engine.volume_remove(name)
                if config.egress is not None:
                    await stop_proxy(engine, f"{name}-egress")
            if (
                isinstance(exc, EngineError)
                and exc.status == 404
                and "image" in exc.message.lower()
            ):
                raise SandboxError(
                    f"image {config.image!r} not found: build it with 'agentkit sandbox build-image'"
                ) from exc
            raise
        sandbox = cls(engine, config, cid, name)
        try:
            await engine.container_start(cid)
            await sandbox._get_runner()
            if config.egress is not None:
                await sandbox._wait_for_forwarder(config.egress.port)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await sandbox.destroy()
            raise
        return sandbox

    async def _wait_for_forwarder(self, port: int) -> None:
        """Return once the proxy container's socket exists and the keeper's forwarder accepts on
        ``127.0.0.1:port``: both start with their containers, so a first command could otherwise
        race them and see a refused connection."""
        check = ["python3", "-c", _WAIT_FOR_EGRESS, str(port), EGRESS_SOCKET]
        result = await self.exec(check, timeout=30)
        if result.exit_code != 0:
            raise SandboxError(f"the egress path did not come up: {result.render()}")

    async def close(self) -> None:
        """Give the sandbox back to its pool, or remove it."""
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            await on_close(self)
            return
        await self.destroy()

    async def destroy(self) -> None:
        """Remove the container and its volume."""
        self.closed = True
        with anyio.CancelScope(shield=True):
            await self._drop_runner()
            await self.engine.container_remove(self.container_id)
            for _ in range(150):  # the engine may still hold the volume for a moment (load)
                try:
                    await self.engine.volume_remove(self.volume)
                    break
                except EngineError as exc:
                    if exc.status != 409:
                        raise
                    await anyio.sleep(0.1)
            if self.config.egress is not None:
                await stop_proxy(self.engine, f"{self.volume}-egress")

    async def __aenter__(self) -> DockerSandbox:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def restart(self) -> None:
        """Restart the container: every process dies, and the work dir (a tmpfs) is emptied."""
        await self._drop_runner()
        self._counters.clear()  # a new cgroup counts from zero
        await self.engine.container_restart(self.container_id)

    async def reset(self) -> bool:
        """Kill every job process, empty the work dir, /tmp, /dev/shm, /dev/mqueue and SysV IPC,
        and verify all of it; False if that could not be proven (the pool then replaces the
        container)."""
        paths = [self.workdir, *RESET_PATHS]
        runner = await self._get_runner()
        if runner is not None and not runner.busy:
            try:
                with anyio.fail_after(20):
                    reply = await runner.request({"reset": True, "paths": paths})
                return reply.get("ok") is True
            except (RunnerGone, TimeoutError):
                await self._drop_runner()
        return await self._reset_direct(paths)

    async def _reset_direct(self, paths: list[str]) -> bool:
        """Reset by plain execs (no runner): kill, wipe, then list what is left."""
        await self._drop_runner()
        if not await self._kill_all():
            return False
        wipe = " ".join(f"{p}/* {p}/.[!.]* {p}/..?*" for p in paths)
        script = f"cd / && rm -rf {wipe} 2>/dev/null; ls -A {' '.join(paths)} | grep -v ':$' ; true"
        try:
            code, out, _err = await run_exec(
                self.engine, self.container_id, ["/bin/sh", "-c", script], user=self.config.job_user
            )
        except (SandboxError, EngineError, TimeoutError, OSError):
            return False
        return code == 0 and not out.strip()

    async def kill_processes(self) -> int:
        """Kill every process the sandbox's commands left (for example before grading in the
        same lease); returns how many there were. Restarts the container if any survives."""
        runner = await self._get_runner()
        if runner is not None:
            try:
                with anyio.fail_after(20):
                    reply = await runner.request({"killall": True})
                if int(reply.get("left", 1)) == 0:
                    return int(reply.get("killed", 0))
            except (RunnerGone, TimeoutError, ValueError):
                await self._drop_runner()
        with anyio.CancelScope(shield=True):
            killed, left = await kill_job_processes(
                self.engine, self.container_id, self.config.job_user
            )
        if left:
            await self.restart()
        return killed

    # --- commands ----------------------------------------------------------------------------

    async def exec(
        self,
        command: str | Sequence[str],
        *,
        timeout: float | None = None,  # noqa: ASYNC109
        max_output_bytes: int | None = None,
        workdir: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ExecResult:
        if self.closed:
            raise SandboxError("sandbox is closed")
        timeout = self.config.exec_timeout if timeout is None else timeout
        limit = max_output_bytes or self.config.max_output_bytes
        cwd = self._resolve(workdir) if workdir else self.workdir
        merged_env = {**self.config.command_env(), **(env or {})}
        argv = _argv(command)
        self.uses += 1
        runner = await self._get_runner()
        if runner is None:  # nothing was sent anywhere yet: the direct path runs it once
            return await exec_direct(
                self.engine,
                self.container_id,
                self.config,
                argv,
                timeout=timeout,
                limit=limit,
                cwd=cwd,
                env=merged_env,
                counters=self._counters,
            )
        return await self._exec_in_runner(runner, argv, timeout, limit, cwd, merged_env)

    async def _get_runner(self) -> Runner | None:
        """The live runner, started if needed; None when runners are off or do not work here
        (no python3 in the image, or the kernel refused to protect it)."""
        if not self.use_runner or self._runner_failures >= 3:
            return None
        if self._runner is not None and not self._runner.closed:
            return self._runner
        try:
            self._runner = await Runner.start(
                self.engine,
                self.container_id,
                user=self.config.job_user,
                env=self.config.command_env(),
            )
        except (RunnerGone, EngineError, TimeoutError, OSError):
            self._runner_failures += 1
            self._runner = None
        return self._runner

    async def _drop_runner(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.aclose()

    async def _exec_in_runner(
        self,
        runner: Runner,
        argv: list[str],
        timeout: float,  # noqa: ASYNC109
        limit: int,
        cwd: str,
        env: dict[str, str],
    ) -> ExecResult:
        rid = runner.next_id()
        payload = {
            "argv": argv,
            "cwd": cwd,
            "env": env,
            "timeout": timeout,
            "limit": limit,
            "disk_paths": [self.workdir, "/tmp"],
        }
        started = time.perf_counter()
        try:
            with anyio.fail_after(timeout + 10):
                raw = await runner.request(payload, rid)
            reply = _Reply.model_validate(raw)
        except RunnerGone as exc:
            return await self._runner_lost(f"the command runner died during the command: {exc}")
        except ValidationError as exc:
            return await self._runner_lost(f"malformed answer from the command runner: {exc}")
        except TimeoutError:
            return await self._runner_lost(
                "the command runner stopped answering; the command timed out", timed_out=True
            )
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True), contextlib.suppress(RunnerGone):
                await runner.kill(rid)
            raise
        restarted = False
        error = reply.error
        if reply.left:
            error = f"{reply.left} process(es) survived SIGKILL: the container was restarted"
            restarted = await self._restart_quietly()
        return ExecResult(
            exit_code=reply.exit_code,
            stdout=reply.stdout,
            stderr=reply.stderr,
            timed_out=reply.timed_out,
            truncated=reply.truncated,
            stdout_bytes=reply.stdout_bytes,
            stderr_bytes=reply.stderr_bytes,
            oom_killed=reply.oom,
            pids_limit_hit=reply.pids,
            restarted=restarted,
            disk_full=reply.disk_full,
            killed_processes=reply.killed,
            error=error,
            duration_s=time.perf_counter() - started,
        )

    async def _runner_lost(self, reason: str, *, timed_out: bool = False) -> ExecResult:
        """The runner died or broke under a command: fail that command (never re-run it), kill
        every job process, and let the next command start a new runner."""
        started = time.perf_counter()
        with anyio.CancelScope(shield=True):
            await self._drop_runner()
            killed, survived = await self._kill_all_counted()
        return ExecResult(
            exit_code=137 if timed_out else None,
            timed_out=timed_out,
            error=reason + ("" if survived is None else "; the sandbox was restarted"),
            killed_processes=killed,
            restarted=survived is not None,
            duration_s=time.perf_counter() - started,
        )

    async def _kill_all_counted(self) -> tuple[int, int | None]:
        """Kill every job process by plain execs: (killed, None), or restart the container when
        that fails or processes survive: (killed, survivors)."""
        for _ in range(3):
            try:
                with anyio.fail_after(15):
                    killed, left = await kill_job_processes(
                        self.engine, self.container_id, self.config.job_user
                    )
            except (EngineError, TimeoutError, OSError):
                continue
            if not left:
                return killed, None
            break
        await self._restart_quietly()
        return 0, -1

    async def _kill_all(self) -> bool:
        _killed, survived = await self._kill_all_counted()
        return survived is None

    async def _restart_quietly(self) -> bool:
        with contextlib.suppress(EngineError, OSError):
            await self.restart()
            return True
        return False


def container_spec(config: SandboxConfig, labels: dict[str, str], volume: str) -> dict[str, Any]:
    """The Engine API body that creates a hardened sandbox container."""
    memory = parse_size(config.memory)
    tmp = parse_size(config.tmp_size)
    mounts: list[dict[str, Any]] = [{"Type": "volume", "Source": volume, "Target": config.workdir}]
    command = ["sleep", "infinity"]
    if config.egress is not None:  # the keeper's forwarder to the proxy is the main process
        command = config.egress.forwarder_cmd()
        sock = {"Type": "volume", "Source": f"{volume}-egress-sock", "Target": SOCKET_DIR}
        mounts.append({**sock, "ReadOnly": True})
    return {
        "Image": config.image,
        "Cmd": command,
        "User": config.keeper_user,
        "WorkingDir": config.workdir,
        "Labels": labels,
        "Env": [f"{k}={v}" for k, v in config.command_env().items()],
        "HostConfig": {
            "Init": True,
            "NetworkMode": config.network,
            "IpcMode": "private",
            "ReadonlyRootfs": True,
            "Tmpfs": {"/tmp": f"rw,nosuid,nodev,size={tmp},mode=1777"},
            "Mounts": mounts,
            "Memory": memory,
            "MemorySwap": memory,
            "NanoCpus": int(config.cpus * 1e9),
            "PidsLimit": config.pids,
            "CapDrop": ["ALL"],
            "SecurityOpt": ["no-new-privileges"],
            "Privileged": False,
        },
    }
