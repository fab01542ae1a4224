"""Chromium inside a Docker container with no network: a renderer exploit owns a container.

``BrowserConfig(container=BrowserContainer())`` makes the pool launch Chromium through a small
wrapper script that runs it in ``docker run -i --network none``: Playwright's two pipes (file
descriptors 3 and 4) travel over the container's stdin and stdout, so the CDP connection needs no
network at all. The container gets the host's ``/usr`` read-only (the same Debian Chromium, no
image to build), a tmpfs ``/tmp``, no capabilities, ``no-new-privileges``, an unprivileged user,
and memory and pid limits.

The container's only way out is its sessions' egress proxies: a forwarder inside listens on
127.0.0.1 ports ``first_port .. first_port + slots - 1`` (the container's own loopback) and
relays each connection to a Unix socket in a directory shared with the host, where the session
holding that slot runs its :class:`~.browser_proxy.EgressProxy`. Nothing else leaves the
container: host services on 127.0.0.1 are on another network namespace.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

CONTAINER_LABEL = "agentkit.browser"
_INSIDE = "/run/agentkit-browser"

# Runs inside the container with Debian's python3 (from the host's /usr, mounted read-only).
_FORWARDER = """\
import asyncio, sys

async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except Exception:
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass

def relay_to(path):
    async def handle(reader, writer):
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(path)
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
    return handle

async def main():
    first, count, folder = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    servers = [
        await asyncio.start_server(relay_to(f"{folder}/slot-{k}.sock"), "127.0.0.1", first + k)
        for k in range(count)
    ]
    await asyncio.gather(*(server.serve_forever() for server in servers))

asyncio.run(main())
"""


class BrowserContainer(BaseModel):
    """How the containerised Chromium runs."""

    model_config = ConfigDict(frozen=True)

    image: str = Field(
        "agentkit/sandbox:bookworm",
        description="Any image with /bin/sh; its /usr is replaced by the host's (read-only).",
    )
    docker: str = "docker"
    user: str = "65534:65534"
    memory: str = "2g"
    pids_limit: int = 1024
    first_port: int = Field(3101, gt=1024, lt=65000)
    slots: int = Field(8, gt=0, le=64, description="Sessions at once (one proxy port each).")
    extra_mounts: tuple[str, ...] = Field(
        ("/etc/fonts",), description="Host paths mounted read-only at the same place."
    )


class ContainerLaunch:
    """The files one containerised browser needs on the host: the wrapper that Playwright
    launches as "Chromium", the forwarder, and the folder holding the slots' Unix sockets."""

    def __init__(self, settings: BrowserContainer, chromium: str) -> None:
        self.settings = settings
        self.folder = Path(tempfile.mkdtemp(prefix="agentkit-browser-"))
        self.name = f"agentkit-browser-{os.getpid()}-{self.folder.name.rsplit('-', 1)[-1]}"
        self.wrapper = self.folder / "chromium-in-docker"
        try:
            self.folder.chmod(0o755)  # the container's user reads the forwarder, uses sockets
            (self.folder / "forward.py").write_text(_FORWARDER)
            self.wrapper.write_text(self._wrapper_script(chromium))
            self.wrapper.chmod(0o755)
        except BaseException:
            self.cleanup()
            raise

    def socket_path(self, slot: int) -> str:
        return str(self.folder / f"slot-{slot}.sock")

    def proxy_server(self, slot: int) -> str:
        """The proxy address as Chromium inside the container reaches it."""
        return f"http://127.0.0.1:{self.settings.first_port + slot}"

    def _wrapper_script(self, chromium: str) -> str:
        s = self.settings
        mounts = [f"-v {shlex.quote(p)}:{shlex.quote(p)}:ro" for p in s.extra_mounts]
        inside = (
            f"python3 {_INSIDE}/forward.py {s.first_port} {s.slots} {_INSIDE} & "
            f'exec {shlex.quote(chromium)} "$@" 3<&0 4>&1 1>&2'
        )
        docker = [
            shlex.quote(s.docker),
            "run --rm -i --init",
            f"--name {self.name} --label {CONTAINER_LABEL}={os.getpid()}",
            "--network none --cap-drop ALL --security-opt no-new-privileges",
            f"--user {shlex.quote(s.user)} --memory {shlex.quote(s.memory)}",
            f"--pids-limit {s.pids_limit} --read-only --tmpfs /tmp:rw,size=512m -e HOME=/tmp",
            "-v /usr:/usr:ro",
            *mounts,
            f"-v {shlex.quote(str(self.folder))}:{_INSIDE}",
            shlex.quote(s.image),
            f"/bin/sh -c {shlex.quote(inside)} chromium",
        ]
        # Playwright talks CDP on fds 3 (to Chromium) and 4 (from it): carry them over the
        # container's stdin and stdout.
        return "#!/bin/sh\nexec " + " ".join(docker) + ' "$@" 0<&3 1>&4\n'

    def cleanup(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
