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

from collections.abc import Iterator

import pytest

from agentkit_sandboxes.browser import BrowserConfig
from tests.browser_support import loopback_policy

from .pages import LIMITS, Server, has_ipv6_loopback, served


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def secret() -> Iterator[Server]:
    with served(Server("127.0.0.1")) as server:
        yield server


@pytest.fixture(scope="module")
def secret6() -> Iterator[Server | None]:
    if not has_ipv6_loopback():
        yield None
        return
    with served(Server("::1")) as server:
        yield server


@pytest.fixture(scope="module")
def site(secret: Server) -> Iterator[Server]:
    own = Server("127.0.0.1", pages={"/": "<title>Home</title><p>allowed page</p>"})
    own.redirects["/out"] = secret.url + "/redirected"
    with served(own) as server:
        yield server


@pytest.fixture(scope="module")
def browser_config(site: Server) -> BrowserConfig:
    """The test's own page server is the only non-public address named."""
    return BrowserConfig(policy=loopback_policy(site.authority), limits=LIMITS)
