"""Shared helpers of the Docker sandbox tests: skip without an engine or image, leak check."""

from __future__ import annotations

import http.client
import json
import os
import socket
from collections.abc import AsyncIterator, Iterator
from urllib.parse import quote

import pytest

from agentkit_sandboxes.config import DEFAULT_IMAGE, LABEL, LABEL_OWNER_PID, SandboxConfig
from agentkit_sandboxes.docker_sandbox import DockerSandbox
from agentkit_sandboxes.engine import Engine, socket_path_from_env

TEST_CONFIG = SandboxConfig(memory="256m", pids=64, work_size="64m", exec_timeout=30)


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("docker", timeout=5)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(5)
        sock.connect(self._path)
        self.sock = sock


def _get(path: str) -> tuple[int, bytes]:
    conn = _UnixHTTPConnection(socket_path_from_env())
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def require_docker() -> None:
    """Skip unless a Docker engine answers and the sandbox image exists (building it if
    mmdebstrap is there)."""
    try:
        status, _ = _get("/_ping")
    except OSError as exc:
        pytest.skip(f"no Docker engine answers on {socket_path_from_env()}: {exc}")
    if status != 200:
        pytest.skip(f"Docker engine answered {status} to /_ping")
    status, _ = _get(f"/images/{quote(DEFAULT_IMAGE, safe='')}/json")
    if status == 404:
        from agentkit_sandboxes.image import build_image

        try:
            build_image()
        except RuntimeError as exc:
            pytest.skip(f"sandbox image {DEFAULT_IMAGE} missing and cannot be built: {exc}")


def my_containers() -> list[str]:
    """Ids of sandbox containers this test process owns."""
    filters = json.dumps({"label": [f"{LABEL}=1", f"{LABEL_OWNER_PID}={os.getpid()}"]})
    status, body = _get(f"/v1.41/containers/json?all=1&filters={quote(filters)}")
    assert status == 200, body
    return [item["Id"] for item in json.loads(body)]


def my_volumes() -> list[str]:
    filters = json.dumps({"label": [f"{LABEL}=1", f"{LABEL_OWNER_PID}={os.getpid()}"]})
    status, body = _get(f"/v1.41/volumes?filters={quote(filters)}")
    assert status == 200, body
    return [item["Name"] for item in json.loads(body).get("Volumes") or []]


@pytest.fixture(scope="module", name="no_leaks")
def no_leaks_fixture() -> Iterator[None]:
    """Fails the module (at teardown) if any container or volume it made is left behind."""
    require_docker()
    before = set(my_containers())
    yield
    left = set(my_containers()) - before
    assert not left, f"containers left behind: {sorted(left)}"
    assert not my_volumes(), f"volumes left behind: {my_volumes()}"


@pytest.fixture(name="engine")
async def engine_fixture(no_leaks: None) -> AsyncIterator[Engine]:
    async with Engine() as eng:
        yield eng


@pytest.fixture(name="sandbox")
async def sandbox_fixture(engine: Engine) -> AsyncIterator[DockerSandbox]:
    box = await DockerSandbox.create(engine, TEST_CONFIG)
    try:
        yield box
    finally:
        await box.destroy()
