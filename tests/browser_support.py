"""Shared helpers of the Chromium tests (tests/sandboxes/test_browser*.py, tests/tools/): loopback
page servers, the policy that names them, and one module-scoped browser pool per test module.

A module that drives Chromium defines a module-scoped ``browser_config`` fixture (its site, its
policy, its limits) and asks for ``browser_pool``: the pool is started once for the module from
that config and stopped after it. Without Chromium or Playwright the pool's tests skip, saying
which is missing.
"""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest

from agentkit_sandboxes.browser import BrowserConfig, BrowserPool, DomainPolicy, find_chromium

NO_CHROMIUM = "Debian's chromium is not installed"
needs_chromium = pytest.mark.skipif(find_chromium() is None, reason=NO_CHROMIUM)
# the marks of a module whose every test drives Chromium
BROWSER_MODULE = [pytest.mark.browser, needs_chromium]

TestT = TypeVar("TestT", bound=Callable[..., Any])


def drives_chromium(test: TestT) -> TestT:
    """The marks of one async test that drives Chromium (in a module where not all do)."""
    marked: TestT = pytest.mark.browser(needs_chromium(pytest.mark.anyio(test)))
    return marked


def require_browser() -> None:
    """Skip unless Playwright imports and Debian's Chromium is there."""
    pytest.importorskip("playwright", reason="playwright is not installed")
    if find_chromium() is None:
        pytest.skip(NO_CHROMIUM)


@contextmanager
def serving(
    handler: type[http.server.BaseHTTPRequestHandler], host: str = "127.0.0.1"
) -> Iterator[int]:
    """A threaded HTTP server of ``handler`` on ``host`` (IPv4 or IPv6), port chosen by the
    system; yields the port and stops the server after."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET

    class Threaded(http.server.ThreadingHTTPServer):
        address_family = family

    server = Threaded((host, 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def site_fixture(handler: type[http.server.BaseHTTPRequestHandler]) -> Any:
    """A module-scoped fixture ``site``: the base URL of ``handler`` served on 127.0.0.1 (a
    module assigns it: ``site = site_fixture(_Site)``)."""

    @pytest.fixture(scope="module")
    def site() -> Iterator[str]:
        with serving(handler) as port:
            yield f"http://127.0.0.1:{port}"

    return site


def send_page(
    handler: http.server.BaseHTTPRequestHandler,
    body: bytes,
    content_type: str = "text/html; charset=utf-8",
    *,
    cors: bool = False,
) -> None:
    """Answer 200 with ``body`` (its length and type; ``cors``: readable from any origin)."""
    handler.send_response(200)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    if cors:
        handler.send_header("Access-Control-Allow-Origin", "*")
    handler.end_headers()
    handler.wfile.write(body)


def loopback_policy(*authorities: str) -> DomainPolicy:
    """Loopback is refused unless named: this policy names the tests' own page servers only
    (``host:port``, or ``http://host:port``)."""
    return DomainPolicy(allow_private=tuple(a.removeprefix("http://") for a in authorities))


@pytest.fixture(scope="module", name="browser_pool")
async def browser_pool_fixture(browser_config: BrowserConfig) -> AsyncIterator[BrowserPool]:
    """One browser pool for the module, from the module's own ``browser_config``."""
    require_browser()
    async with BrowserPool(browser_config) as started:
        yield started
