"""``DockerSandbox``: a hardened container driven over the Engine API, one ``exec`` per command.

The container idles as a keeper user; commands run as a different job user inside a small
``sh`` wrapper that records the cgroup's OOM-kill and pid-limit counters around the command, so
the result can say which limit was hit. A timeout kills the command's whole process group; a
fork bomb (the pid limit was hit) restarts the container, which keeps the work dir (a tmpfs
volume) and drops every process.
"""

from __future__ import annotations

import contextlib
import io
import posixpath
import secrets
import shlex
import tarfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import anyio

from .base import ExecResult, FileEntry, SandboxError
from .config import LABEL, LABEL_POOL, SandboxConfig, owner_is_alive, owner_labels, parse_size
from .engine import Engine, EngineError
from .runner import Runner, RunnerGone

# Runs as: sh -c WRAPPER agentkit NONCE PIDFILE CMD [ARGS...]. Reads counters with shell
# builtins only (no extra processes), prints "NONCE rc oom pids" as the last stderr line.
_WRAPPER = r"""
S=$1; F=$2; shift 2
echo $$ > "$F" 2>/dev/null
cg() { _v=0; if [ -r "$1" ]; then while read -r _k _n; do [ "$_k" = "$2" ] && _v=$_n; done < "$1"; fi; }
cgall() {
  cg /sys/fs/cgroup/memory/memory.oom_control oom_kill; _o=$_v
  cg /sys/fs/cgroup/memory.events oom_kill; _o=$((_o + _v))
  cg /sys/fs/cgroup/pids/pids.events max; _p=$_v
  cg /sys/fs/cgroup/pids.events max; _p=$((_p + _v))
}
cgall; o0=$_o; p0=$_p
"$@"
rc=$?
cgall
rm -f "$F" 2>/dev/null
printf '\n%s %s %s %s\n' "$S" "$rc" $((_o - o0)) $((_p - p0)) >&2
exit $rc
"""

_PID_PREFIX = "/tmp/.agentkit-"
_KINDS: dict[str, Literal["file", "dir", "link", "other"]] = {
    "regular file": "file",
    "regular empty file": "file",
    "directory": "dir",
    "symbolic link": "link",
}
_DISK_FULL_MARKERS = ("No space left on device", "[Errno 28]")


class _Capture:
    """Keeps the head and the tail of a byte stream within ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        self.head_limit = limit * 2 // 3
        self.tail_limit = limit - self.head_limit
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            if len(self.tail) > 2 * self.tail_limit + 65536:
                del self.tail[: len(self.tail) - self.tail_limit]

    @property
    def truncated(self) -> bool:
        return self.total > self.head_limit + self.tail_limit

    def text(self) -> str:
        tail = bytes(self.tail[-self.tail_limit :]) if self.tail_limit else b""
        if not self.truncated:
            return (bytes(self.head) + bytes(self.tail)).decode("utf-8", "replace")
        cut = self.total - len(self.head) - len(tail)
        return (
            bytes(self.head).decode("utf-8", "replace")
            + f"\n...[{cut} bytes truncated]...\n"
            + tail.decode("utf-8", "replace")
        )

    def bytes(self) -> bytes:
        return bytes(self.head) + bytes(self.tail)


def _argv(command: str | Sequence[str]) -> list[str]:
    if isinstance(command, str):
        return ["/bin/sh", "-c", command]
    argv = list(command)
    if not argv:
        raise ValueError("empty command")
    return argv


class DockerSandbox:
    """One hardened container. Create with :meth:`create` (or take one from a
    :class:`~agentkit.sandboxes.pool.SandboxPool`); ``close()`` removes it (or returns it to its
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
        self.use_runner = True
        """Run commands through the in-container runner (fast); False: one docker exec each."""

    def __repr__(self) -> str:
        return f"DockerSandbox({self.container_id[:12]})"

    @property
    def workdir(self) -> str:
        return self.config.workdir

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
            await engine.volume_create(name, labels, opts)
            cid = await engine.container_create(name, _container_spec(config, labels, name))
        except BaseException as exc:
            with anyio.CancelScope(shield=True):  # also when cancelled mid-way: leave nothing
                await engine.container_remove(name)
                await engine.volume_remove(name)
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
        except BaseException:
            with anyio.CancelScope(shield=True):
                await sandbox.destroy()
            raise
        return sandbox

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
            for _ in range(50):  # the engine may still hold the volume for a moment
                try:
                    await self.engine.volume_remove(self.volume)
                    return
                except EngineError as exc:
                    if exc.status != 409:
                        raise
                    await anyio.sleep(0.1)

    async def __aenter__(self) -> DockerSandbox:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def restart(self) -> None:
        """Restart the container: every process dies, and the work dir (a tmpfs) is emptied."""
        await self._drop_runner()
        await self.engine.container_restart(self.container_id)

    async def reset(self) -> bool:
        """Kill all job processes and wipe the work dir and /tmp; False if that failed."""
        runner = self._runner
        if runner is not None and not runner.closed and not runner.lock.locked():
            try:
                async with runner.lock:
                    with anyio.fail_after(20):
                        reply = await runner.request(
                            {"reset": True, "paths": [self.workdir, "/tmp"]}
                        )
                if reply.get("ok"):
                    return True
            except (RunnerGone, TimeoutError):
                await self._drop_runner()
        return await self._reset_direct()

    async def _reset_direct(self) -> bool:
        script = (
            f"kill -9 -1 2>/dev/null; cd / && rm -rf {self.workdir}/* {self.workdir}/.[!.]* "
            f"{self.workdir}/..?* /tmp/* /tmp/.[!.]* /tmp/..?* 2>/dev/null; "
            f"ls -A {self.workdir}; ls -A /tmp | grep -v '^[.]agentkit-'; true"
        )
        try:
            with anyio.fail_after(20):
                code, out, _err = await self._run_bytes(["/bin/sh", "-c", script])
        except (SandboxError, EngineError, TimeoutError, OSError):
            return False
        await self._drop_runner()  # killed with every other job process
        await self._get_runner()
        return code == 0 and not out.strip()

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
        merged_env = {**self.config.env, **(env or {})}
        self.uses += 1
        runner = await self._get_runner()
        if runner is not None and not runner.lock.locked():
            async with runner.lock:
                result = await self._exec_in_runner(
                    runner, _argv(command), timeout, limit, cwd, merged_env
                )
            if result is not None:
                return result
        return await self._exec_direct(command, timeout, limit, cwd, merged_env)

    async def _get_runner(self) -> Runner | None:
        """The live runner, started if needed; None when runners are off or do not work here
        (no python3 in the image)."""
        if not self.use_runner or self._runner_failures >= 3:
            return None
        if self._runner is not None and not self._runner.closed:
            return self._runner
        try:
            self._runner = await Runner.start(
                self.engine,
                self.container_id,
                user=self.config.job_user,
                workdir=self.workdir,
                env=self.config.env,
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
    ) -> ExecResult | None:
        """Run through the runner; None means the runner is gone and the caller should fall back
        to a direct exec."""
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
            with anyio.fail_after(timeout + 15):
                reply = await runner.request(payload, rid)
        except RunnerGone:
            await self._drop_runner()
            return None
        except TimeoutError:
            await self._drop_runner()
            with anyio.CancelScope(shield=True):
                restarted = not await self._kill_all()
            return ExecResult(
                exit_code=137,
                timed_out=True,
                restarted=restarted,
                duration_s=time.perf_counter() - started,
            )
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True), contextlib.suppress(RunnerGone):
                await runner.kill(rid)
            raise
        pids = bool(reply.get("pids"))
        restarted = False
        if pids:
            restarted = not await self._kill_all()
        code = reply.get("exit_code")
        return ExecResult(
            exit_code=int(code) if code is not None else None,
            stdout=str(reply.get("stdout", "")),
            stderr=str(reply.get("stderr", "")),
            timed_out=bool(reply.get("timed_out")),
            truncated=bool(reply.get("truncated")),
            stdout_bytes=int(reply.get("stdout_bytes", 0)),
            stderr_bytes=int(reply.get("stderr_bytes", 0)),
            oom_killed=bool(reply.get("oom")),
            pids_limit_hit=pids,
            restarted=restarted,
            disk_full=bool(reply.get("disk_full")),
            duration_s=time.perf_counter() - started,
        )

    async def _exec_direct(
        self,
        command: str | Sequence[str],
        timeout: float,  # noqa: ASYNC109
        limit: int,
        cwd: str,
        env: dict[str, str],
    ) -> ExecResult:
        """One ``docker exec`` for this command, inside the status wrapper."""
        nonce = "AGENTKIT-" + secrets.token_hex(8)
        pidfile = _PID_PREFIX + nonce
        argv = ["/bin/sh", "-c", _WRAPPER, "agentkit", nonce, pidfile, *_argv(command)]
        started = time.perf_counter()
        eid = await self.engine.exec_create(
            self.container_id,
            argv,
            user=self.config.job_user,
            workdir=cwd,
            env=env,
        )
        out, err = _Capture(limit), _Capture(limit + 256)
        timed_out = False
        try:
            with anyio.move_on_after(timeout) as scope:
                async with self.engine.exec_stream(eid) as frames:
                    async for stream, chunk in frames:
                        (err if stream == 2 else out).add(chunk)
            timed_out = scope.cancelled_caught
        finally:
            if timed_out or not _finished(out, err, nonce):
                with anyio.CancelScope(shield=True):
                    await self._kill_group(pidfile)
        exit_code: int | None
        stderr_text, status = _split_status(err.text(), nonce)
        if timed_out:
            exit_code = 137
            oom = pids = False
        elif status is not None:
            exit_code, oom, pids = status
        else:
            info = await self.engine.exec_inspect(eid)
            code = info.get("ExitCode")
            exit_code = int(code) if code is not None else None
            oom = pids = False
        if not pids and status is None and not timed_out:
            pids = "Resource temporarily unavailable" in stderr_text
        restarted = False
        if pids:
            restarted = not await self._kill_all()
        combined = out.text() + stderr_text
        disk_full = any(m in combined for m in _DISK_FULL_MARKERS) and await self._disk_full()
        return ExecResult(
            exit_code=exit_code,
            stdout=out.text(),
            stderr=stderr_text,
            timed_out=timed_out,
            truncated=out.truncated or err.truncated,
            stdout_bytes=out.total,
            stderr_bytes=err.total - (len(err.text().encode()) - len(stderr_text.encode())),
            oom_killed=oom,
            pids_limit_hit=pids,
            restarted=restarted,
            disk_full=disk_full,
            duration_s=time.perf_counter() - started,
        )

    async def _kill_group(self, pidfile: str) -> None:
        """Kill the process group of a command (its wrapper is the group leader)."""
        script = f'p=$(cat {pidfile} 2>/dev/null) && kill -9 -"$p" 2>/dev/null; rm -f {pidfile}'
        try:
            with anyio.fail_after(15):
                eid = await self.engine.exec_create(
                    self.container_id, ["/bin/sh", "-c", script], user=self.config.job_user
                )
                async with self.engine.exec_stream(eid) as frames:
                    async for _ in frames:
                        pass
        except (EngineError, TimeoutError, OSError):
            await self.restart()

    async def _kill_all(self) -> bool:
        """Kill every job process (after a fork bomb); restart the container if even that cannot
        start. Returns False when it had to restart (the work dir is then lost)."""
        for _ in range(3):
            try:
                with anyio.fail_after(10):
                    code, _out, _err = await self._run_bytes(
                        ["/bin/sh", "-c", "kill -9 -1; sleep 0.2; kill -9 -1; true"]
                    )
            except (EngineError, TimeoutError, OSError):
                continue
            if code == 0:
                await self._drop_runner()
                return True
        await self.restart()
        return False

    async def _disk_full(self) -> bool:
        script = f"df -P {self.workdir} /tmp | tail -n +2"
        eid = await self.engine.exec_create(
            self.container_id, ["/bin/sh", "-c", script], user=self.config.job_user
        )
        text = bytearray()
        async with self.engine.exec_stream(eid) as frames:
            async for stream, chunk in frames:
                if stream == 1:
                    text += chunk
        for line in text.decode("utf-8", "replace").splitlines():
            fields = line.split()
            if len(fields) >= 4 and fields[3] in ("0", "1", "2", "3", "4"):
                return True
        return False

    # --- files -------------------------------------------------------------------------------

    def _resolve(self, path: str) -> str:
        joined = posixpath.normpath(posixpath.join(self.workdir, path))
        return joined

    def _in_workdir(self, path: str) -> str:
        resolved = self._resolve(path)
        if resolved != self.workdir and not resolved.startswith(self.workdir + "/"):
            raise SandboxError(f"{path!r} is outside the work dir {self.workdir}")
        return resolved

    async def read_file(self, path: str) -> bytes:
        target = self._resolve(path)
        result = await self._run_bytes(["cat", "--", target])
        code, data, err = result
        if code != 0:
            if "No such file" in err:
                raise FileNotFoundError(f"{path}: no such file")
            if "Is a directory" in err:
                raise IsADirectoryError(f"{path}: is a directory")
            raise SandboxError(f"cannot read {path}: {err.strip()}")
        return data

    async def write_file(self, path: str, data: bytes | str) -> None:
        target = self._in_workdir(path)
        if target == self.workdir:
            raise SandboxError("cannot write to the work dir itself")
        payload = data.encode() if isinstance(data, str) else data
        rel = posixpath.relpath(target, self.workdir)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            parent = posixpath.dirname(rel)
            parts = parent.split("/") if parent else []
            for i in range(len(parts)):
                tar.addfile(self._tarinfo("/".join(parts[: i + 1]), tarfile.DIRTYPE, 0o755))
            info = self._tarinfo(rel, tarfile.REGTYPE, 0o644)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        await self._put(buffer.getvalue())

    async def list_files(self, path: str = ".", *, recursive: bool = False) -> list[FileEntry]:
        target = self._resolve(path)
        depth = [] if recursive else ["-maxdepth", "1"]
        script = (
            f"cd {shlex.quote(target)} && find . -mindepth 1 {' '.join(depth)} "
            "-exec stat -c '%F|%s|%n' {} +"
        )
        code, data, err = await self._run_bytes(["/bin/sh", "-c", script])
        if code != 0 and not data:
            if "No such file" in err or "can't cd" in err:
                raise FileNotFoundError(f"{path}: no such directory")
            raise SandboxError(f"cannot list {path}: {err.strip()}")
        entries = []
        for line in data.decode("utf-8", "replace").splitlines():
            kind_text, _, rest = line.partition("|")
            size, _, name = rest.partition("|")
            kind = _KINDS.get(kind_text, "other")
            entries.append(
                FileEntry(
                    path=name.removeprefix("./"),
                    kind=kind,
                    size=int(size) if size.isdigit() else 0,
                )
            )
        return sorted(entries, key=lambda e: e.path)

    async def upload_dir(self, local: Path, dest: str = ".") -> None:
        local = Path(local)
        if not local.is_dir():
            raise FileNotFoundError(f"{local}: not a directory")
        target = self._in_workdir(dest)
        prefix = posixpath.relpath(target, self.workdir)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            if prefix != ".":
                parts = prefix.split("/")
                for i in range(len(parts)):
                    tar.addfile(self._tarinfo("/".join(parts[: i + 1]), tarfile.DIRTYPE, 0o755))
            for item in sorted(local.rglob("*")):
                rel = item.relative_to(local).as_posix()
                name = rel if prefix == "." else f"{prefix}/{rel}"
                if item.is_symlink():
                    info = self._tarinfo(name, tarfile.SYMTYPE, 0o777)
                    info.linkname = str(item.readlink())
                    tar.addfile(info)
                elif item.is_dir():
                    tar.addfile(self._tarinfo(name, tarfile.DIRTYPE, 0o755))
                elif item.is_file():
                    mode = 0o755 if item.stat().st_mode & 0o111 else 0o644
                    info = self._tarinfo(name, tarfile.REGTYPE, mode)
                    info.size = item.stat().st_size
                    with item.open("rb") as fh:
                        tar.addfile(info, fh)
        await self._put(buffer.getvalue())

    async def download_dir(self, src: str, local: Path) -> None:
        target = self._in_workdir(src)
        try:
            raw = await self.engine.get_archive(self.container_id, target)
        except EngineError as exc:
            if exc.status == 404:
                raise FileNotFoundError(f"{src}: no such directory") from exc
            raise
        local = Path(local)
        local.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r") as tar:
            members = []
            for member in tar.getmembers():
                _first, _, rest = member.name.partition("/")
                if not rest:
                    continue
                member.name = rest
                members.append(member)
            tar.extractall(local, members=members, filter="data")

    def _tarinfo(self, name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.mode = mode
        uid, _, gid = self.config.job_user.partition(":")
        info.uid, info.gid = int(uid), int(gid or uid)
        info.mtime = int(time.time())
        return info

    async def _put(self, tar: bytes) -> None:
        try:
            await self.engine.put_archive(self.container_id, self.workdir, tar)
        except EngineError as exc:
            raise SandboxError(f"cannot write files: {exc.message}") from exc

    async def _run_bytes(self, argv: list[str]) -> tuple[int | None, bytes, str]:
        eid = await self.engine.exec_create(
            self.container_id, argv, user=self.config.job_user, workdir=self.workdir
        )
        out, err = bytearray(), bytearray()
        with anyio.fail_after(self.config.exec_timeout):
            async with self.engine.exec_stream(eid) as frames:
                async for stream, chunk in frames:
                    (err if stream == 2 else out).extend(chunk)
        info = await self.engine.exec_inspect(eid)
        code = info.get("ExitCode")
        return (int(code) if code is not None else None), bytes(out), err.decode("utf-8", "replace")


def _finished(out: _Capture, err: _Capture, nonce: str) -> bool:
    return nonce.encode() in bytes(err.tail[-(len(nonce) + 64) :]) or nonce.encode() in bytes(
        err.head[-(len(nonce) + 64) :]
    )


def _split_status(stderr: str, nonce: str) -> tuple[str, tuple[int, bool, bool] | None]:
    """Remove the wrapper's status line from stderr and parse it."""
    index = stderr.rfind("\n" + nonce + " ")
    if index < 0:
        return stderr, None
    line = stderr[index + 1 :].strip().split()
    try:
        code, oom, pids = int(line[1]), int(line[2]) > 0, int(line[3]) > 0
    except (IndexError, ValueError):
        return stderr, None
    return stderr[:index], (code, oom, pids)


def _container_spec(config: SandboxConfig, labels: dict[str, str], volume: str) -> dict[str, Any]:
    memory = parse_size(config.memory)
    tmp = parse_size(config.tmp_size)
    return {
        "Image": config.image,
        "Cmd": ["sleep", "infinity"],
        "User": config.keeper_user,
        "WorkingDir": config.workdir,
        "Labels": labels,
        "Env": [f"{k}={v}" for k, v in config.env.items()],
        "HostConfig": {
            "Init": True,
            "NetworkMode": config.network,
            "ReadonlyRootfs": True,
            "Tmpfs": {"/tmp": f"rw,nosuid,nodev,size={tmp},mode=1777"},
            "Mounts": [{"Type": "volume", "Source": volume, "Target": config.workdir}],
            "Memory": memory,
            "MemorySwap": memory,
            "NanoCpus": int(config.cpus * 1e9),
            "PidsLimit": config.pids,
            "CapDrop": ["ALL"],
            "SecurityOpt": ["no-new-privileges"],
            "Privileged": False,
        },
    }


async def reap_orphans(engine: Engine, *, everything: bool = False) -> int:
    """Remove sandbox containers (and volumes) whose owning process is gone; with
    ``everything=True``, remove all agentkit sandboxes. Returns how many containers went."""
    removed = 0
    for item in await engine.containers_with_label(f"{LABEL}=1"):
        labels = item.get("Labels") or {}
        if everything or not owner_is_alive(labels):
            await engine.container_remove(str(item["Id"]))
            removed += 1
    for volume in await engine.volumes_with_label(f"{LABEL}=1"):
        labels = volume.get("Labels") or {}
        if everything or not owner_is_alive(labels):
            with contextlib.suppress(EngineError):  # still in use by a container
                await engine.volume_remove(str(volume["Name"]))
    return removed
