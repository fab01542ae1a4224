"""File operations of a Docker sandbox: archive upload / download through the Engine API, and
``cat`` / ``find`` run as the job user. Mixed into :class:`~agentkit_sandboxes.DockerSandbox`."""

from __future__ import annotations

import io
import posixpath
import shlex
import tarfile
import time
from pathlib import Path
from typing import Literal

import anyio

from .base import FileEntry, SandboxError
from .config import SandboxConfig
from .engine import Engine, EngineError

_KINDS: dict[str, Literal["file", "dir", "link", "other"]] = {
    "regular file": "file",
    "regular empty file": "file",
    "directory": "dir",
    "symbolic link": "link",
}


class SandboxFiles:
    """Files in the work dir of a container (needs ``engine``, ``config``, ``container_id``)."""

    engine: Engine
    config: SandboxConfig
    container_id: str

    @property
    def workdir(self) -> str:
        return self.config.workdir

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
