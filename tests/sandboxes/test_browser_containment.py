"""Attacks on the browser's network containment, from a hostile page and from the model.

A page server on 127.0.0.1 is the one origin the policy names (``allow_private``); a second
server on another loopback port (and one on [::1] when the host has IPv6) plays a service on the
host that no page may reach. Each hostile page tries one way out (fetch, XHR, WebSocket,
EventSource, iframe, image, worker, beacon, form, script navigation, popup, prefetch, stylesheet,
meta refresh, redirect, and every spelling of a loopback address); each test asserts that the secret service saw nothing, that the
proxy recorded the refusal, that the model sees it in the next observation, and that the session
and the pool go on working. No request leaves loopback.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.server
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest

from agentkit.tool import RunContext, ToolStatus
from agentkit_sandboxes.browser import (
    CHROMIUM_ARGS,
    CONTAINMENT_ARGS,
    BrowserActionError,
    BrowserConfig,
    BrowserLimits,
    BrowserPool,
    BrowserSession,
    DomainPolicy,
    find_chromium,
)
from agentkit_tools.browser import browser_tools

playwright = pytest.importorskip("playwright", reason="playwright is not installed")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(find_chromium() is None, reason="Debian's chromium is not installed"),
]

LIMITS = BrowserLimits(action_timeout_s=5, navigation_timeout_s=6)
_WS_MAGIC = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@dataclass
class Server:
    """A loopback HTTP server that records every request it receives, WebSocket upgrades
    included, and serves ``pages`` (path -> HTML) and redirects (path -> location)."""

    host: str
    pages: dict[str, str] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)
    port: int = 0

    @property
    def authority(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.authority}"


def _handler(server: Server) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server.hits.append(self.path)
            path = self.path.split("?")[0]
            if self.headers.get("Upgrade", "").lower() == "websocket":
                accept = hashlib.sha1((self.headers["Sec-WebSocket-Key"] + _WS_MAGIC).encode())
                self.send_response(101)
                self.send_header("Upgrade", "websocket")
                self.send_header("Connection", "Upgrade")
                self.send_header("Sec-WebSocket-Accept", base64.b64encode(accept.digest()).decode())
                self.end_headers()
                return
            if path in server.redirects:
                self.send_response(302)
                self.send_header("Location", server.redirects[path])
                self.end_headers()
                return
            if path == "/events":
                self._send(b"data: hello\n\n", "text/event-stream")
            elif path == "/sw.js":
                self._send(b"self.addEventListener('fetch', () => {});", "text/javascript")
            else:
                page = server.pages.get(path, "<title>Secret</title><p>the secret data</p>")
                self._send(page.encode(), "text/html; charset=utf-8")

        do_POST = do_GET

        def _send(self, body: bytes, kind: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Access-Control-Allow-Origin", "*")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


def _serve(server: Server) -> Iterator[Server]:
    family = socket.AF_INET6 if ":" in server.host else socket.AF_INET

    class Threaded(http.server.ThreadingHTTPServer):
        address_family = family

    httpd = Threaded((server.host, 0), _handler(server))
    server.port = httpd.server_address[1]
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield server
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def secret() -> Iterator[Server]:
    yield from _serve(Server("127.0.0.1"))


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def secret6() -> Iterator[Server | None]:
    if not _has_ipv6_loopback():
        yield None
        return
    yield from _serve(Server("::1"))


@pytest.fixture(scope="module")
def site(secret: Server) -> Iterator[Server]:
    own = Server("127.0.0.1", pages={"/": "<title>Home</title><p>allowed page</p>"})
    own.redirects["/out"] = secret.url + "/redirected"
    yield from _serve(own)


@pytest.fixture(scope="module")
async def pool(site: Server) -> AsyncIterator[BrowserPool]:
    # The test's own page server is the only non-public address named.
    policy = DomainPolicy(allow_private=(site.authority,))
    async with BrowserPool(BrowserConfig(policy=policy, limits=LIMITS)) as started:
        yield started


# --- attack pages ----------------------------------------------------------------------------

DONE = "document.title = 'done:' + String(r)"


def _attack(name: str, target: str) -> str:
    """A page whose script tries to reach ``target`` by ``name``, then sets its title."""
    ws = target.replace("http://", "ws://")
    scripts = {
        "fetch": f"fetch('{target}/fetch').then(x => x.text(), e => 'error').then(r => {{{DONE}}})",
        "xhr": f"const x = new XMLHttpRequest(); x.open('GET', '{target}/xhr');"
        f"x.onloadend = () => {{ const r = x.status; {DONE} }}; x.send();",
        "websocket": f"const w = new WebSocket('{ws}/ws'); w.onopen = () => {{ const r = 'open';"
        f" {DONE} }}; w.onerror = () => {{ const r = 'error'; {DONE} }};",
        "eventsource": f"const e = new EventSource('{target}/events'); e.onmessage = () => "
        f"{{ e.close(); const r = 'message'; {DONE} }}; e.onerror = () => {{ e.close(); const r = 'error';"
        f" {DONE} }};",
        "iframe": f"const f = document.createElement('iframe'); f.src = '{target}/iframe';"
        f"f.onload = () => {{ const r = 'loaded'; {DONE} }}; document.body.appendChild(f);",
        "image": f"const i = new Image(); i.onload = i.onerror = (ev) => {{ const r = ev.type;"
        f" {DONE} }}; i.src = '{target}/image.png';",
        "worker": "const code = `fetch('" + target + "/worker').then(() => postMessage('ok'),"
        " () => postMessage('error'))`; const w = new Worker(URL.createObjectURL(new "
        "Blob([code]))); w.onmessage = (m) => { const r = m.data; " + DONE + " };",
        "beacon": f"const r = navigator.sendBeacon('{target}/beacon', 'x'); {DONE}",
        "form": f"const f = document.createElement('form'); f.method = 'post';"
        f"f.action = '{target}/form'; document.body.appendChild(f); f.submit();",
        "navigation": f"location.href = '{target}/navigated';",
        "popup": f"const r = window.open('{target}/popup') ? 'opened' : 'refused'; {DONE}",
    }
    markup = {
        "prefetch": f"<link rel=prefetch href='{target}/prefetch'>",
        "stylesheet": f"<link rel=stylesheet href='{target}/style.css'>",
        "refresh": f"<meta http-equiv=refresh content='0; url={target}/refreshed'>",
    }
    if name in markup:
        return f"<title>{name}</title>{markup[name]}<body>hostile</body>"
    return f"<title>{name}</title><body><script>{scripts[name]}</script></body>"


VECTORS = [
    "fetch",
    "xhr",
    "websocket",
    "eventsource",
    "iframe",
    "image",
    "worker",
    "beacon",
    "form",
    "navigation",
    "popup",
    "prefetch",
    "stylesheet",
    "refresh",
]


async def _wait_for_block(browser: BrowserSession, port: int) -> str:
    """The first recorded block aimed at ``port`` (waiting for the page's script to try)."""
    with anyio.fail_after(15):
        while True:
            for blocked in browser.blocked:
                if f":{port}" in blocked.target:
                    return blocked.reason
            await anyio.sleep(0.05)


async def _still_usable(pool: BrowserPool, browser: BrowserSession, site: Server) -> None:
    view = await browser.open(site.url + "/")
    assert view.title == "Home"
    async with pool.session() as fresh:
        assert (await fresh.open(site.url + "/")).title == "Home"


@pytest.mark.anyio
@pytest.mark.parametrize("vector", VECTORS)
async def test_a_page_cannot_reach_another_loopback_port(
    pool: BrowserPool, site: Server, secret: Server, vector: str
) -> None:
    path = f"/attack-{vector}"
    site.pages[path] = _attack(vector, secret.url)
    async with pool.session() as browser:
        opened = await browser.open(site.url + path)
        reason = await _wait_for_block(browser, secret.port)
        assert "127.0.0.1 is a loopback address, not allowed" in reason
        view = await browser.read("snapshot")
        # Shown in the first view after the block: the open's own view or the next read.
        shown = opened.render() + "\n" + view.render()
        blocked = [line for line in shown.splitlines() if line.startswith("[blocked by")]
        assert blocked, f"the block is not visible to the model:\n{shown}"
        assert f":{secret.port}" in blocked[0]
        assert "127.0.0.1 is a loopback address, not allowed" in blocked[0]
        assert secret.hits == [], f"{vector} reached the secret service: {secret.hits}"
        await _still_usable(pool, browser, site)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("vector", "outcome", "request_path"),
    [
        ("fetch", "done:<title>Secret</title><p>the secret data</p>", "/fetch"),
        ("websocket", "done:open", "/ws"),
        ("iframe", "done:loaded", "/iframe"),
        ("eventsource", "done:message", "/events"),
        ("worker", "done:ok", "/worker"),
    ],
)
async def test_the_same_requests_reach_the_allowed_origin(
    pool: BrowserPool, site: Server, vector: str, outcome: str, request_path: str
) -> None:
    """Controls: the attacks above fail because of the policy, not because the proxy breaks
    these request types (the page server stands in for the secret service here)."""
    path = f"/control-{vector}"
    site.pages[path] = _attack(vector, site.url)
    async with pool.session() as browser:
        await browser.open(site.url + path)
        await browser.page.wait_for_function("document.title.startsWith('done:')")
        assert await browser.page.title() == outcome
        assert request_path in site.hits
        assert browser.blocked == []


HOST_FORMS = [
    "localhost",
    "LocalHost.",
    "app.localhost",
    "0x7f000001",
    "2130706433",
    "0177.0.0.1",
    "127.1",
    "127.0.0.2",
    "[::ffff:127.0.0.1]",
    "0.0.0.0",
]


@pytest.mark.anyio
@pytest.mark.parametrize("host", HOST_FORMS)
async def test_every_spelling_of_loopback_is_refused(
    pool: BrowserPool, site: Server, secret: Server, host: str
) -> None:
    target = f"http://{host}:{secret.port}"
    async with pool.session() as browser:
        # Typed by the model: refused before any request.
        with pytest.raises(BrowserActionError, match=r"loopback|unspecified|private"):
            await browser.open(target + "/typed")
        # Requested by a page: refused by the proxy.
        path = f"/spelling-{host}"
        site.pages[path] = _attack("fetch", target)
        opened = await browser.open(site.url + path)
        reason = await _wait_for_block(browser, secret.port)
        assert "address, not allowed" in reason
        assert opened.blocked or (await browser.read("snapshot")).blocked
        assert secret.hits == []
        await _still_usable(pool, browser, site)


@pytest.mark.anyio
async def test_ipv6_loopback_is_refused(
    pool: BrowserPool, site: Server, secret6: Server | None
) -> None:
    if secret6 is None:
        pytest.skip("this host has no IPv6 loopback")
    async with pool.session() as browser:
        with pytest.raises(BrowserActionError, match="::1 is a loopback address"):
            await browser.open(secret6.url + "/typed")
        site.pages["/attack-v6"] = _attack("websocket", secret6.url) + _attack("fetch", secret6.url)
        await browser.open(site.url + "/attack-v6")
        assert "::1 is a loopback address" in await _wait_for_block(browser, secret6.port)
        assert secret6.hits == []
        await _still_usable(pool, browser, site)


@pytest.mark.anyio
async def test_a_redirect_to_a_refused_address_is_an_error(
    pool: BrowserPool, site: Server, secret: Server
) -> None:
    async with pool.session() as browser:
        with pytest.raises(BrowserActionError, match=r"blocked by the network policy.*loopback"):
            await browser.open(site.url + "/out")
        assert secret.hits == []
        assert any("/redirected" in target for target in browser.blocked_requests)
        await _still_usable(pool, browser, site)


@pytest.mark.anyio
async def test_the_model_reads_a_block_as_an_error_observation(
    pool: BrowserPool, site: Server, secret: Server
) -> None:
    tools = {t.name: t for t in browser_tools()}
    async with pool.session() as browser:
        context = RunContext(deps=browser)
        outcome = await tools["browser_open"].call({"url": site.url + "/out"}, context)
        assert outcome.status is ToolStatus.ERROR
        assert "blocked by the network policy" in outcome.output
        outcome = await tools["browser_open"].call(
            {"url": f"http://localhost:{secret.port}/"}, context
        )
        assert outcome.status is ToolStatus.ERROR
        assert "host 'localhost' resolves to" in outcome.output
        outcome = await tools["browser_open"].call({"url": site.url + "/"}, context)
        assert outcome.status is ToolStatus.OK
    assert secret.hits == []


@pytest.mark.anyio
async def test_a_name_on_the_allow_list_is_still_judged_by_its_address(
    pool: BrowserPool, site: Server, secret: Server
) -> None:
    """``localhost`` is allowed by name, but its addresses are not named: refused."""
    policy = DomainPolicy(allow=("localhost", site.authority))
    async with pool.session(policy=policy) as browser:
        assert (await browser.open(site.url + "/")).title == "Home"
        with pytest.raises(BrowserActionError, match="host 'localhost' resolves to"):
            await browser.open(f"http://localhost:{secret.port}/")
        site.pages["/attack-named"] = _attack("fetch", f"http://localhost:{secret.port}")
        await browser.open(site.url + "/attack-named")
        assert "resolves to" in await _wait_for_block(browser, secret.port)
    assert secret.hits == []


@pytest.mark.anyio
async def test_service_workers_are_never_loaded(
    pool: BrowserPool, site: Server, secret: Server
) -> None:
    """Playwright blocks service workers per context: the worker script is never fetched, so
    a worker cannot outlive the page or fetch on its own (were one allowed, its requests
    would still go through the proxy)."""
    site.pages["/sw-worker.js"] = f"fetch('{secret.url}/from-sw')"
    site.pages["/sw"] = (
        "<title>sw</title><script>navigator.serviceWorker.register('/sw-worker.js')"
        f".then(() => 'registered', () => 'refused').then(r => {{{DONE}}})</script>"
    )
    async with pool.session() as browser:
        await browser.open(site.url + "/sw")
        await browser.page.wait_for_function("document.title.startsWith('done:')")
        assert "/sw" in site.hits
        assert "/sw-worker.js" not in site.hits
        assert browser.context.service_workers == []
    assert secret.hits == []


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
async def test_webrtc_sends_no_udp_past_the_proxy(pool: BrowserPool, site: Server) -> None:
    udp = _Udp()
    with udp.sock:
        site.pages["/rtc"] = _stun_page(udp.port)
        async with pool.session() as browser:
            await browser.open(site.url + "/rtc")
            # Candidate gathering ends (with no UDP candidate at all) ...
            await browser.page.wait_for_function("document.title === 'done:complete'")
        # ... and the STUN server on loopback got nothing.
        assert udp.received() == 0


@pytest.mark.anyio
async def test_without_the_containment_flags_webrtc_would_leak(site: Server) -> None:
    """The control for the test above: the flags are what stops the UDP."""
    args = tuple(a for a in CHROMIUM_ARGS if a not in CONTAINMENT_ARGS)
    policy = DomainPolicy(allow_private=(site.authority,))
    config: dict[str, Any] = {"policy": policy, "limits": LIMITS, "args": args}
    udp = _Udp()
    with udp.sock:
        site.pages["/rtc-leaky"] = _stun_page(udp.port)
        async with BrowserPool(BrowserConfig(**config)) as leaky, leaky.session() as browser:
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
    site: Server, secret: Server
) -> None:
    policy = DomainPolicy(allow_private=(site.authority,))
    with _chromium_with_devtools_port() as endpoint:
        config = BrowserConfig(policy=policy, limits=LIMITS, cdp_endpoint=endpoint)
        async with BrowserPool(config) as remote, remote.session() as browser:
            site.pages["/attack-cdp"] = _attack("websocket", secret.url) + _attack(
                "fetch", secret.url
            )
            await browser.open(site.url + "/attack-cdp")
            assert "loopback address" in await _wait_for_block(browser, secret.port)
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
