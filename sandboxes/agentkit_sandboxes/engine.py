"""A small asynchronous client for the Docker Engine API over its unix socket (aiohttp).

Only the calls the sandboxes need: containers, execs, archives, volumes and images. The docker
SDK is blocking; this client keeps every call on the event loop (see ``benchmarks/bench_sandbox.py``
for the comparison with the SDK in worker threads).
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import aiohttp
import anyio
from anyio.abc import SocketStream

API_VERSION = "v1.41"
DEFAULT_SOCKET = "/var/run/docker.sock"


class EngineError(RuntimeError):
    """The Docker engine answered with an error (``status`` is the HTTP status)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"docker engine error {status}: {message}")
        self.status = status
        self.message = message


class EngineUnavailable(RuntimeError):
    """No Docker engine answers on the socket."""


def socket_path_from_env() -> str:
    """The engine's socket: ``$DOCKER_HOST`` when it is a ``unix://`` address, else the default."""
    host = os.environ.get("DOCKER_HOST", "")
    if host.startswith("unix://"):
        return host[len("unix://") :]
    return DEFAULT_SOCKET


class Engine:
    """One connection pool to the engine; use as ``async with Engine() as engine``."""

    def __init__(self, socket_path: str | None = None) -> None:
        self.socket_path = socket_path or socket_path_from_env()
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Engine:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        if self._session is None:
            connector = aiohttp.UnixConnector(path=self.socket_path, limit=0)
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
            self._session = aiohttp.ClientSession(connector=connector, timeout=timeout)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("Engine is not open: use 'async with Engine()' or await open()")
        return self._session

    @staticmethod
    def _url(path: str) -> str:
        return f"http://docker/{API_VERSION}{path}"

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send one request; return the decoded JSON body (or None); raise EngineError on >= 400."""
        kwargs: dict[str, Any] = {"params": dict(params or {})}
        if body is not None:
            kwargs["json"] = body
        if data is not None:
            kwargs["data"] = data
        if headers:
            kwargs["headers"] = dict(headers)
        try:
            async with self.session.request(method, self._url(path), **kwargs) as resp:
                raw = await resp.read()
                if resp.status >= 400:
                    raise EngineError(resp.status, _error_message(raw))
                if not raw:
                    return None
                if resp.content_type == "application/json":
                    return json.loads(raw)
                return raw
        except aiohttp.ClientConnectorError as exc:
            raise EngineUnavailable(f"no Docker engine at {self.socket_path}: {exc}") from exc

    # --- system, images, volumes ---------------------------------------------------------------

    async def ping(self) -> bool:
        try:
            await self.request("GET", "/_ping")
        except (EngineUnavailable, EngineError, aiohttp.ClientError, OSError):
            return False
        return True

    async def image_inspect(self, name: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = await self.request(
                "GET", f"/images/{quote(name, safe='')}/json"
            )
        except EngineError as exc:
            if exc.status == 404:
                return None
            raise
        return result

    async def volume_create(self, name: str, labels: Mapping[str, str], tmpfs_opts: str) -> None:
        await self.request(
            "POST",
            "/volumes/create",
            body={
                "Name": name,
                "Driver": "local",
                "DriverOpts": {"type": "tmpfs", "device": "tmpfs", "o": tmpfs_opts},
                "Labels": dict(labels),
            },
        )

    async def volume_remove(self, name: str) -> None:
        try:
            await self.request("DELETE", f"/volumes/{name}", params={"force": "1"})
        except EngineError as exc:
            if exc.status != 404:
                raise

    async def volumes_with_label(self, label: str) -> list[dict[str, Any]]:
        filters = json.dumps({"label": [label]})
        result = await self.request("GET", "/volumes", params={"filters": filters})
        volumes: list[dict[str, Any]] = (result or {}).get("Volumes") or []
        return volumes

    # --- networks ------------------------------------------------------------------------------

    async def network_create(self, name: str, labels: Mapping[str, str], *, internal: bool) -> str:
        result = await self.request(
            "POST",
            "/networks/create",
            body={
                "Name": name,
                "Driver": "bridge",
                "Internal": internal,
                "CheckDuplicate": True,
                "Labels": dict(labels),
            },
        )
        return str(result["Id"])

    async def network_remove(self, nid: str) -> None:
        try:
            await self.request("DELETE", f"/networks/{nid}")
        except EngineError as exc:
            if exc.status != 404:
                raise

    async def network_connect(self, nid: str, cid: str, aliases: list[str] | None = None) -> None:
        body: dict[str, Any] = {"Container": cid}
        if aliases:
            body["EndpointConfig"] = {"Aliases": aliases}
        await self.request("POST", f"/networks/{nid}/connect", body=body)

    async def network_inspect(self, nid: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", f"/networks/{nid}")
        return result

    async def networks_with_label(self, label: str) -> list[dict[str, Any]]:
        filters = json.dumps({"label": [label]})
        result = await self.request("GET", "/networks", params={"filters": filters})
        return list(result or [])

    # --- containers ----------------------------------------------------------------------------

    async def container_create(self, name: str, config: Mapping[str, Any]) -> str:
        result = await self.request(
            "POST", "/containers/create", params={"name": name}, body=config
        )
        return str(result["Id"])

    async def container_start(self, cid: str) -> None:
        await self.request("POST", f"/containers/{cid}/start")

    async def container_restart(self, cid: str) -> None:
        await self.request("POST", f"/containers/{cid}/restart", params={"t": "0"})

    async def container_remove(self, cid: str) -> None:
        try:
            await self.request("DELETE", f"/containers/{cid}", params={"force": "1", "v": "1"})
        except EngineError as exc:
            if exc.status != 404:
                raise

    async def container_inspect(self, cid: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", f"/containers/{cid}/json")
        return result

    async def containers_with_label(self, label: str) -> list[dict[str, Any]]:
        filters = json.dumps({"label": [label]})
        result = await self.request(
            "GET", "/containers/json", params={"all": "1", "filters": filters}
        )
        return list(result or [])

    async def put_archive(self, cid: str, path: str, tar: bytes) -> None:
        await self.request(
            "PUT",
            f"/containers/{cid}/archive",
            params={"path": path},
            data=tar,
            headers={"Content-Type": "application/x-tar"},
        )

    async def get_archive(self, cid: str, path: str) -> bytes:
        result = await self.request("GET", f"/containers/{cid}/archive", params={"path": path})
        return bytes(result or b"")

    # --- exec ----------------------------------------------------------------------------------

    async def exec_create(
        self,
        cid: str,
        cmd: list[str],
        *,
        user: str,
        workdir: str | None = None,
        env: Mapping[str, str] | None = None,
        stdin: bool = False,
    ) -> str:
        config: dict[str, Any] = {
            "Cmd": cmd,
            "User": user,
            "AttachStdout": True,
            "AttachStderr": True,
            "AttachStdin": stdin,
            "Tty": False,
        }
        if workdir:
            config["WorkingDir"] = workdir
        if env:
            config["Env"] = [f"{k}={v}" for k, v in env.items()]
        result = await self.request("POST", f"/containers/{cid}/exec", body=config)
        return str(result["Id"])

    async def exec_inspect(self, eid: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", f"/exec/{eid}/json")
        return result

    @asynccontextmanager
    async def exec_stream(self, eid: str) -> AsyncIterator[AsyncIterator[tuple[int, bytes]]]:
        """Start an exec and yield an iterator of ``(stream, chunk)`` (1 stdout, 2 stderr) frames.

        Leaving the context closes the connection (which does not stop the process)."""
        resp = await self.session.post(
            self._url(f"/exec/{eid}/start"), json={"Detach": False, "Tty": False}
        )
        try:
            if resp.status >= 400:
                raise EngineError(resp.status, _error_message(await resp.read()))
            yield _frames(resp.content)
        finally:
            resp.close()

    async def exec_attach(self, eid: str) -> tuple[SocketStream, bytes]:
        """Start an exec with stdin attached: returns the raw two-way stream (stdin in, Docker's
        multiplexed stdout/stderr frames out) and any frame bytes already read."""
        stream = await anyio.connect_unix(self.socket_path)
        try:
            body = b'{"Detach": false, "Tty": false}'
            head = (
                f"POST /{API_VERSION}/exec/{eid}/start HTTP/1.1\r\nHost: docker\r\n"
                "Content-Type: application/json\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            await stream.send(head.encode() + body)
            buffer = b""
            while b"\r\n\r\n" not in buffer:
                buffer += await stream.receive()
                if len(buffer) > 65536:
                    raise EngineError(502, "no end of headers from the engine")
            header, _, rest = buffer.partition(b"\r\n\r\n")
            status = int(header.split(b" ", 2)[1])
            if status not in (101, 200):
                raise EngineError(status, rest.decode("utf-8", "replace").strip())
        except BaseException:
            await stream.aclose()
            raise
        return stream, rest


async def _frames(content: aiohttp.StreamReader) -> AsyncIterator[tuple[int, bytes]]:
    """Demultiplex Docker's attach stream: 8-byte header (stream, 0, 0, 0, big-endian size)."""
    while True:
        try:
            header = await content.readexactly(8)
        except (EOFError, aiohttp.ClientPayloadError):  # IncompleteReadError is an EOFError
            return
        stream, size = header[0], struct.unpack(">I", header[4:])[0]
        remaining = size
        while remaining:
            chunk = await content.read(min(remaining, 65536))
            if not chunk:
                return
            remaining -= len(chunk)
            yield stream, chunk


def _error_message(raw: bytes) -> str:
    try:
        decoded = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return raw.decode("utf-8", "replace").strip()
    if isinstance(decoded, dict) and "message" in decoded:
        return str(decoded["message"])
    return str(decoded)
