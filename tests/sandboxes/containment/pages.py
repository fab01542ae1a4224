"""The pieces of the browser containment tests: a loopback server that records what reaches it,
the hostile pages (one way out each), and the waits and checks every attack test ends with."""

from __future__ import annotations

import base64
import hashlib
import http.server
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import anyio

from agentkit_sandboxes.browser import BrowserLimits, BrowserPool, BrowserSession
from tests.browser_support import send_page, serving

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
            send_page(self, body, kind, cors=True)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@contextmanager
def served(server: Server) -> Iterator[Server]:
    """``server`` listening on its host (IPv4 or IPv6), its port filled in."""
    with serving(_handler(server), server.host) as port:
        server.port = port
        yield server


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


# --- attack pages ----------------------------------------------------------------------------

DONE = "document.title = 'done:' + String(r)"


def attack_page(name: str, target: str) -> str:
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


async def wait_for_block(browser: BrowserSession, port: int) -> str:
    """The first recorded block aimed at ``port`` (waiting for the page's script to try)."""
    with anyio.fail_after(15):
        while True:
            for blocked in browser.blocked:
                if f":{port}" in blocked.target:
                    return blocked.reason
            await anyio.sleep(0.05)


async def still_usable(pool: BrowserPool, browser: BrowserSession, site: Server) -> None:
    view = await browser.open(site.url + "/")
    assert view.title == "Home"
    async with pool.session() as fresh:
        assert (await fresh.open(site.url + "/")).title == "Home"
