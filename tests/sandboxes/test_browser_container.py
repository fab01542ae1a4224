"""Chromium inside a Docker container with no network, reached over its stdio pipes.

What runs in that container (Chromium, or code that took over a renderer, played here by
``docker exec``) reaches nothing on the host's loopback; its only way out is the session's egress
proxy, which applies the same policy as on the host.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
from collections.abc import Iterator

import anyio
import pytest

from agentkit_sandboxes.browser import (
    BrowserActionError,
    BrowserConfig,
    BrowserContainer,
    BrowserLimits,
    BrowserPool,
)
from agentkit_sandboxes.browser_container import CONTAINER_LABEL
from tests.browser_support import BROWSER_MODULE, loopback_policy, send_page, serving

playwright = pytest.importorskip("playwright", reason="playwright is not installed")


def _docker_works() -> bool:
    if shutil.which("docker") is None:
        return False
    done = subprocess.run(["docker", "info"], capture_output=True, check=False, timeout=30)
    return done.returncode == 0


pytestmark = [
    *BROWSER_MODULE,
    pytest.mark.docker,
    pytest.mark.skipif(not _docker_works(), reason="no Docker engine"),
]

LIMITS = BrowserLimits(action_timeout_s=5, navigation_timeout_s=8)
PAGE = "<title>Home</title><p>served on the host's loopback</p>"


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str]

    def do_GET(self) -> None:
        self.hits.append(self.path)
        body = (PAGE if self.path == "/" else self.server_page(self.path)).encode()
        send_page(self, body, "text/html", cors=True)

    def server_page(self, path: str) -> str:
        return PAGES.get(path, "<title>Secret</title>")

    def log_message(self, *args: object) -> None:
        pass


PAGES: dict[str, str] = {}


def _serve() -> Iterator[tuple[int, list[str]]]:
    hits: list[str] = []
    with serving(type("Handler", (_Recorder,), {"hits": hits})) as port:
        yield port, hits


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def site() -> Iterator[tuple[int, list[str]]]:
    yield from _serve()


@pytest.fixture(scope="module")
def secret() -> Iterator[tuple[int, list[str]]]:
    yield from _serve()


@pytest.fixture(scope="module")
def browser_config(site: tuple[int, list[str]]) -> BrowserConfig:
    policy = loopback_policy(f"127.0.0.1:{site[0]}")
    return BrowserConfig(policy=policy, limits=LIMITS, container=BrowserContainer())


async def _containers() -> list[dict[str, object]]:
    """``docker inspect`` of the browser containers this test process started."""
    label = f"label={CONTAINER_LABEL}={os.getpid()}"
    listed = await anyio.run_process(["docker", "ps", "-q", "--filter", label])
    ids = listed.stdout.decode().split()
    if not ids:
        return []
    inspected = await anyio.run_process(["docker", "inspect", *ids])
    found: list[dict[str, object]] = json.loads(inspected.stdout)
    return found


@pytest.mark.anyio
async def test_the_browser_runs_in_a_container_without_network(
    browser_pool: BrowserPool, site: tuple[int, list[str]]
) -> None:
    async with browser_pool.session() as browser:
        view = await browser.open(f"http://127.0.0.1:{site[0]}/")
        assert view.title == "Home"
        (container,) = await _containers()
        host_config = container["HostConfig"]
        assert isinstance(host_config, dict)
        assert host_config["NetworkMode"] == "none"
        assert host_config["ReadonlyRootfs"] is True
        assert host_config["CapDrop"] == ["ALL"]
        top = await anyio.run_process(["docker", "top", str(container["Id"])])
        assert b"chromium" in top.stdout


@pytest.mark.anyio
async def test_a_page_in_the_container_is_held_by_the_policy(
    browser_pool: BrowserPool, site: tuple[int, list[str]], secret: tuple[int, list[str]]
) -> None:
    PAGES["/attack"] = (
        f"<title>attack</title><script>fetch('http://127.0.0.1:{secret[0]}/fetch');"
        f"new WebSocket('ws://localhost:{secret[0]}/ws');</script>"
    )
    async with browser_pool.session() as browser:
        await browser.open(f"http://127.0.0.1:{site[0]}/attack")
        with anyio.fail_after(15):
            while len(browser.blocked) < 2:  # noqa: ASYNC110 (the proxy records; no event)
                await anyio.sleep(0.05)
        assert all("loopback address" in b.reason for b in browser.blocked)
        with pytest.raises(BrowserActionError, match="loopback"):
            await browser.open(f"http://127.0.0.1:{secret[0]}/")
        assert (await browser.open(f"http://127.0.0.1:{site[0]}/")).title == "Home"
    assert secret[1] == []


@pytest.mark.anyio
async def test_code_in_the_container_reaches_only_the_proxy(
    browser_pool: BrowserPool, site: tuple[int, list[str]], secret: tuple[int, list[str]]
) -> None:
    """As if a page had taken over the renderer: a process in the container tries the host's
    loopback services directly, then through the forwarder."""
    async with browser_pool.session() as browser:
        await browser.open(f"http://127.0.0.1:{site[0]}/")
        (container,) = await _containers()
        assert browser.proxy is not None and browser.proxy.unix_path is not None
        slot = int(browser.proxy.unix_path.rsplit("slot-", 1)[1].removesuffix(".sock"))
        forwarder = BrowserContainer().first_port + slot
        script = (
            "import socket, sys\n"
            "try:\n"
            f"    socket.create_connection(('127.0.0.1', {secret[0]}), timeout=3)\n"
            "    print('direct: connected')\n"
            "except OSError as e:\n"
            "    print('direct: refused')\n"
            f"s = socket.create_connection(('127.0.0.1', {forwarder}), timeout=3)\n"
            f"s.sendall(b'GET http://127.0.0.1:{secret[0]}/via-proxy HTTP/1.1\\r\\n\\r\\n')\n"
            "print('proxy:', s.recv(200).split(b'\\r\\n')[0].decode())\n"
        )
        with anyio.fail_after(60):
            done = await anyio.run_process(
                ["docker", "exec", str(container["Id"]), "python3", "-c", script], check=False
            )
    said = done.stdout.decode() + done.stderr.decode()
    assert "direct: refused" in said, said
    assert "proxy: HTTP/1.1 403 Forbidden" in said, said
    assert secret[1] == []
