"""What Chromium's own flags contain, behind the proxy: WebRTC sends no UDP, a Chromium reached
over CDP is held the same way, and Chromium itself resolves no host name (each with the control
that shows the flag is what holds)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import pytest

from agentkit_sandboxes.browser import (
    CHROMIUM_ARGS,
    CONTAINMENT_ARGS,
    BrowserConfig,
    BrowserPool,
    find_chromium,
)
from tests.browser_support import BROWSER_MODULE

from .pages import DONE, Server, attack_page, wait_for_block

playwright = pytest.importorskip("playwright", reason="playwright is not installed")
pytestmark = BROWSER_MODULE


class _Udp:
    """A UDP socket on 127.0.0.1 standing for a STUN server: counts the datagrams it gets."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

    def received(self) -> int:
        count = 0
        while True:
            try:
                self.sock.recv(2048)
            except BlockingIOError:
                return count
            count += 1


def _stun_page(port: int) -> str:
    return (
        "<title>rtc</title><script>const pc = new RTCPeerConnection({iceServers: [{urls: "
        f"'stun:127.0.0.1:{port}'}}]}}); pc.createDataChannel('x');"
        "pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === 'complete') {"
        f" const r = 'complete'; {DONE} }} }};"
        "pc.createOffer().then(o => pc.setLocalDescription(o));</script>"
    )


@pytest.mark.anyio
async def test_webrtc_sends_no_udp_past_the_proxy(browser_pool: BrowserPool, site: Server) -> None:
    udp = _Udp()
    with udp.sock:
        site.pages["/rtc"] = _stun_page(udp.port)
        async with browser_pool.session() as browser:
            await browser.open(site.url + "/rtc")
            # Candidate gathering ends (with no UDP candidate at all) ...
            await browser.page.wait_for_function("document.title === 'done:complete'")
        # ... and the STUN server on loopback got nothing.
        assert udp.received() == 0


@pytest.mark.anyio
async def test_without_the_containment_flags_webrtc_would_leak(
    browser_config: BrowserConfig, site: Server
) -> None:
    """The control for the test above: the flags are what stops the UDP."""
    args = tuple(a for a in CHROMIUM_ARGS if a not in CONTAINMENT_ARGS)
    config = browser_config.model_copy(update={"args": args})
    udp = _Udp()
    with udp.sock:
        site.pages["/rtc-leaky"] = _stun_page(udp.port)
        async with BrowserPool(config) as leaky, leaky.session() as browser:
            await browser.open(site.url + "/rtc-leaky")
            with anyio.fail_after(20):
                while not udp.received():  # noqa: ASYNC110 (a datagram is the event)
                    await anyio.sleep(0.05)


def _stop_group(process: subprocess.Popen[str]) -> None:
    """Stop a process and every helper it started in its session."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(10)
            break
        except subprocess.TimeoutExpired:
            continue
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the helpers leave after the main process
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


@contextmanager
def _chromium_with_devtools_port() -> Iterator[str]:
    """A Chromium started by the test with the containment flags and a DevTools port on
    127.0.0.1, as one in a container would be: the pool connects to it over CDP."""
    executable = find_chromium()
    assert executable is not None
    # the profile is removed after Chromium's whole process group is gone (its helpers write to
    # it while they shut down); a file written even later does not fail the test
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        args = [executable, "--headless", "--remote-debugging-port=0"]
        args += [f"--user-data-dir={profile}", *CHROMIUM_ARGS, "about:blank"]
        process = subprocess.Popen(args, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            assert process.stderr is not None
            for line in process.stderr:
                if line.startswith("DevTools listening on "):
                    yield line.split(" on ", 1)[1].strip()
                    return
            raise AssertionError("Chromium printed no DevTools endpoint")
        finally:
            _stop_group(process)


@pytest.mark.anyio
async def test_a_chromium_reached_over_cdp_is_contained_the_same_way(
    browser_config: BrowserConfig, site: Server, secret: Server
) -> None:
    with _chromium_with_devtools_port() as endpoint:
        config = browser_config.model_copy(update={"cdp_endpoint": endpoint})
        async with BrowserPool(config) as remote, remote.session() as browser:
            site.pages["/attack-cdp"] = attack_page("websocket", secret.url) + attack_page(
                "fetch", secret.url
            )
            await browser.open(site.url + "/attack-cdp")
            assert "loopback address" in await wait_for_block(browser, secret.port)
            assert (await browser.open(site.url + "/")).title == "Home"
    assert secret.hits == []


@pytest.mark.anyio
@pytest.mark.parametrize("contained", [True, False])
async def test_chromium_itself_resolves_no_host_name(site: Server, contained: bool) -> None:
    """The backstop behind the proxy: with ``CONTAINMENT_ARGS`` a context that had no proxy
    could not even resolve ``localhost`` (the control, without the flags, reaches the page)."""
    from playwright.async_api import Error as PlaywrightError
    from playwright.async_api import async_playwright

    args = CHROMIUM_ARGS if contained else tuple(a for a in CHROMIUM_ARGS if "resolver" not in a)
    async with async_playwright() as driver:
        chromium = await driver.chromium.launch(executable_path=find_chromium(), args=list(args))
        try:
            page = await (await chromium.new_context()).new_page()
            target = f"http://localhost:{site.port}/"
            if contained:
                with pytest.raises(PlaywrightError, match="ERR_NAME_NOT_RESOLVED"):
                    await page.goto(target)
            else:
                await page.goto(target)
                assert await page.title() == "Home"
        finally:
            await chromium.close()
