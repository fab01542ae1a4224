"""A hostile page tries each way out to a service on another loopback port (fetch, XHR,
WebSocket, EventSource, iframe, image, worker, beacon, form, script navigation, popup, prefetch,
stylesheet, meta refresh, redirect, service worker): the secret service sees nothing, the proxy
records the refusal, the model sees it, and the session and the pool go on working; controls show
the same requests reach the allowed origin."""

from __future__ import annotations

import pytest

from agentkit.tool import RunContext, ToolStatus
from agentkit_sandboxes.browser import BrowserActionError, BrowserPool
from agentkit_tools.browser import browser_tools
from tests.browser_support import BROWSER_MODULE

from .pages import DONE, VECTORS, Server, attack_page, still_usable, wait_for_block

playwright = pytest.importorskip("playwright", reason="playwright is not installed")
pytestmark = BROWSER_MODULE


@pytest.mark.anyio
@pytest.mark.parametrize("vector", VECTORS)
async def test_a_page_cannot_reach_another_loopback_port(
    browser_pool: BrowserPool, site: Server, secret: Server, vector: str
) -> None:
    path = f"/attack-{vector}"
    site.pages[path] = attack_page(vector, secret.url)
    async with browser_pool.session() as browser:
        opened = await browser.open(site.url + path)
        reason = await wait_for_block(browser, secret.port)
        assert "127.0.0.1 is a loopback address, not allowed" in reason
        view = await browser.read("snapshot")
        # Shown in the first view after the block: the open's own view or the next read.
        shown = opened.render() + "\n" + view.render()
        blocked = [line for line in shown.splitlines() if line.startswith("[blocked by")]
        assert blocked, f"the block is not visible to the model:\n{shown}"
        assert f":{secret.port}" in blocked[0]
        assert "127.0.0.1 is a loopback address, not allowed" in blocked[0]
        assert secret.hits == [], f"{vector} reached the secret service: {secret.hits}"
        await still_usable(browser_pool, browser, site)


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
    browser_pool: BrowserPool, site: Server, vector: str, outcome: str, request_path: str
) -> None:
    """Controls: the attacks above fail because of the policy, not because the proxy breaks
    these request types (the page server stands in for the secret service here)."""
    path = f"/control-{vector}"
    site.pages[path] = attack_page(vector, site.url)
    async with browser_pool.session() as browser:
        await browser.open(site.url + path)
        await browser.page.wait_for_function("document.title.startsWith('done:')")
        assert await browser.page.title() == outcome
        assert request_path in site.hits
        assert browser.blocked == []


@pytest.mark.anyio
async def test_a_redirect_to_a_refused_address_is_an_error(
    browser_pool: BrowserPool, site: Server, secret: Server
) -> None:
    async with browser_pool.session() as browser:
        with pytest.raises(BrowserActionError, match=r"blocked by the network policy.*loopback"):
            await browser.open(site.url + "/out")
        assert secret.hits == []
        assert any("/redirected" in target for target in browser.blocked_requests)
        await still_usable(browser_pool, browser, site)


@pytest.mark.anyio
async def test_the_model_reads_a_block_as_an_error_observation(
    browser_pool: BrowserPool, site: Server, secret: Server
) -> None:
    tools = {t.name: t for t in browser_tools()}
    async with browser_pool.session() as browser:
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
async def test_service_workers_are_never_loaded(
    browser_pool: BrowserPool, site: Server, secret: Server
) -> None:
    """Playwright blocks service workers per context: the worker script is never fetched, so
    a worker cannot outlive the page or fetch on its own (were one allowed, its requests
    would still go through the proxy)."""
    site.pages["/sw-worker.js"] = f"fetch('{secret.url}/from-sw')"
    site.pages["/sw"] = (
        "<title>sw</title><script>navigator.serviceWorker.register('/sw-worker.js')"
        f".then(() => 'registered', () => 'refused').then(r => {{{DONE}}})</script>"
    )
    async with browser_pool.session() as browser:
        await browser.open(site.url + "/sw")
        await browser.page.wait_for_function("document.title.startsWith('done:')")
        assert "/sw" in site.hits
        assert "/sw-worker.js" not in site.hits
        assert browser.context.service_workers == []
    assert secret.hits == []
