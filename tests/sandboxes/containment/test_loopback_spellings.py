"""Every way of naming the host's loopback (numeric forms, ``localhost`` and its subdomains,
IPv4-mapped IPv6, ``0.0.0.0``, ``[::1]``, a name on the allow list) is refused, typed by the
model or requested by a page."""

from __future__ import annotations

import pytest

from agentkit_sandboxes.browser import BrowserActionError, BrowserPool, DomainPolicy
from tests.browser_support import BROWSER_MODULE

from .pages import Server, attack_page, still_usable, wait_for_block

playwright = pytest.importorskip("playwright", reason="playwright is not installed")
pytestmark = BROWSER_MODULE

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
    browser_pool: BrowserPool, site: Server, secret: Server, host: str
) -> None:
    target = f"http://{host}:{secret.port}"
    async with browser_pool.session() as browser:
        # Typed by the model: refused before any request.
        with pytest.raises(BrowserActionError, match=r"loopback|unspecified|private"):
            await browser.open(target + "/typed")
        # Requested by a page: refused by the proxy.
        path = f"/spelling-{host}"
        site.pages[path] = attack_page("fetch", target)
        opened = await browser.open(site.url + path)
        reason = await wait_for_block(browser, secret.port)
        assert "address, not allowed" in reason
        assert opened.blocked or (await browser.read("snapshot")).blocked
        assert secret.hits == []
        await still_usable(browser_pool, browser, site)


@pytest.mark.anyio
async def test_ipv6_loopback_is_refused(
    browser_pool: BrowserPool, site: Server, secret6: Server | None
) -> None:
    if secret6 is None:
        pytest.skip("this host has no IPv6 loopback")
    async with browser_pool.session() as browser:
        with pytest.raises(BrowserActionError, match="::1 is a loopback address"):
            await browser.open(secret6.url + "/typed")
        site.pages["/attack-v6"] = attack_page("websocket", secret6.url) + attack_page(
            "fetch", secret6.url
        )
        await browser.open(site.url + "/attack-v6")
        assert "::1 is a loopback address" in await wait_for_block(browser, secret6.port)
        assert secret6.hits == []
        await still_usable(browser_pool, browser, site)


@pytest.mark.anyio
async def test_a_name_on_the_allow_list_is_still_judged_by_its_address(
    browser_pool: BrowserPool, site: Server, secret: Server
) -> None:
    """``localhost`` is allowed by name, but its addresses are not named: refused."""
    policy = DomainPolicy(allow=("localhost", site.authority))
    async with browser_pool.session(policy=policy) as browser:
        assert (await browser.open(site.url + "/")).title == "Home"
        with pytest.raises(BrowserActionError, match="host 'localhost' resolves to"):
            await browser.open(f"http://localhost:{secret.port}/")
        site.pages["/attack-named"] = attack_page("fetch", f"http://localhost:{secret.port}")
        await browser.open(site.url + "/attack-named")
        assert "resolves to" in await wait_for_block(browser, secret.port)
    assert secret.hits == []
