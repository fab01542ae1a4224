"""The browser tools as the model calls them: through Tool.call, with the session in deps."""

from __future__ import annotations

import http.server
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from agentkit.tool import RunContext, Tool, ToolStatus
from agentkit_sandboxes.browser import (
    BrowserConfig,
    BrowserLimits,
    BrowserPool,
    BrowserSession,
    DomainPolicy,
    find_chromium,
)
from agentkit_tools.browser import browser_tools

needs_chromium = pytest.mark.skipif(
    find_chromium() is None, reason="Debian's chromium is not installed"
)

PAGES = {
    "/": "<html><head><title>Shop</title></head><body><a href='/item'>Blue teapot</a>"
    "<form action='/find'><input aria-label='Search' name=q></form></body></html>",
    "/item": "<html><head><title>Teapot</title></head><body><p>Price: 42 euros</p></body></html>",
    "/form": "<html><head><title>Form</title></head><body>"
    "<select aria-label='Colour' onchange='document.title=\"picked \"+this.value'>"
    "<option>Red</option><option>Green</option></select>"
    "<input aria-label='Key' onkeydown='document.title=\"key \"+event.key'></body></html>",
    "/tall": "<html><head><title>Tall</title></head><body>"
    "<div style='height:5000px'>top</div><p>bottom</p></body></html>",
}


class _Site(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = PAGES.get(self.path.split("?")[0], "<title>Results</title>" + self.path).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@dataclass
class Deps:
    browser: BrowserSession


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
async def pool(site: str) -> AsyncIterator[BrowserPool]:
    pytest.importorskip("playwright", reason="playwright is not installed")
    if find_chromium() is None:
        pytest.skip("Debian's chromium is not installed")
    # Loopback is refused unless named: allow this test's own page server only.
    policy = DomainPolicy(allow_private=(site.removeprefix("http://"),))
    async with BrowserPool(BrowserConfig(policy=policy)) as started:
        yield started


TOOLS = {t.name: t for t in browser_tools()}


async def call(name: str, deps: Any, **arguments: Any) -> tuple[ToolStatus, str]:
    outcome = await TOOLS[name].call(arguments, RunContext(deps=deps))
    return outcome.status, outcome.output


def test_tool_set_and_schemas() -> None:
    assert sorted(TOOLS) == sorted(
        ["browser_screenshot", "browser_tabs"]
        + [
            f"browser_{n}"
            for n in ("open", "click", "type", "select", "press", "scroll", "back", "read")
        ]
    )
    schema = TOOLS["browser_type"].schema()["function"]
    assert schema["parameters"]["required"] == ["ref", "text"]
    assert "ctx" not in schema["parameters"]["properties"]


@pytest.mark.anyio
async def test_missing_session_is_an_error_observation() -> None:
    status, output = await call("browser_open", deps=None, url="http://127.0.0.1:1/")
    assert status is ToolStatus.ERROR
    assert "no browser is available" in output


@pytest.mark.browser
@needs_chromium
@pytest.mark.anyio
async def test_browse_search_and_screenshot_through_tools(pool: BrowserPool, site: str) -> None:
    async with pool.session(limits=BrowserLimits(max_view_chars=2000)) as browser:
        deps = Deps(browser=browser)
        status, page = await call("browser_open", deps, url=site + "/")
        assert status is ToolStatus.OK
        assert page.startswith(f"[tab 1/1] Shop | {site}/")
        link = page.split('link "Blue teapot" [ref=')[1].split("]")[0]
        status, item = await call("browser_click", deps, ref=link)
        assert "Teapot" in item.splitlines()[0]
        status, text = await call("browser_read", deps)
        assert "Price: 42 euros" in text
        await call("browser_back", deps)
        status, snap = await call("browser_read", deps, format="snapshot")
        box = snap.split('textbox "Search" [ref=')[1].split("]")[0]
        status, results = await call("browser_type", deps, ref=box, text="teapot", submit=True)
        assert "q=teapot" in results.splitlines()[0]
        status, shot = await call("browser_screenshot", deps)
        assert status is ToolStatus.OK
        assert shot.startswith("screenshot 1 taken")
        assert browser.screenshots[0].png.startswith(b"\x89PNG")
        status, listed = await call("browser_tabs", deps)
        assert listed.startswith("* 1. Results")
        status, error = await call("browser_click", deps, ref="e4242")
        assert status is ToolStatus.ERROR
        assert "e4242" in error
        status, error = await call("browser_open", deps, url="ftp://example.org/")
        assert status is ToolStatus.ERROR
        assert "scheme 'ftp'" in error


# --- each tool alone: the module-level Tool objects, with the session passed as deps ----------


def ref_of(view: str, element: str) -> str:
    """The ref of ``element`` (such as 'link "Blue teapot"') in a rendered page view."""
    return view.split(element + " [ref=")[1].split("]")[0]


async def alone(item: Tool, browser: BrowserSession, **arguments: Any) -> tuple[ToolStatus, str]:
    outcome = await item.call(arguments, RunContext(deps=browser))
    return outcome.status, outcome.output


@pytest.mark.browser
@needs_chromium
@pytest.mark.anyio
async def test_browser_open_alone(pool: BrowserPool, site: str) -> None:
    from agentkit_tools.browser import browser_open

    async with pool.session() as browser:
        status, page = await alone(browser_open, browser, url=site + "/item")
    assert status is ToolStatus.OK
    assert page.startswith(f"[tab 1/1] Teapot | {site}/item")


@pytest.mark.browser
@needs_chromium
@pytest.mark.anyio
async def test_browser_click_alone(pool: BrowserPool, site: str) -> None:
    from agentkit_tools.browser import browser_click

    async with pool.session() as browser:
        start = (await browser.open(site + "/")).render()
        status, page = await alone(browser_click, browser, ref=ref_of(start, 'link "Blue teapot"'))
    assert status is ToolStatus.OK
    assert page.startswith(f"[tab 1/1] Teapot | {site}/item")


@pytest.mark.browser
@needs_chromium
@pytest.mark.anyio
async def test_browser_type_alone(pool: BrowserPool, site: str) -> None:
    from agentkit_tools.browser import browser_type

    async with pool.session() as browser:
        start = (await browser.open(site + "/")).render()
        box = ref_of(start, 'textbox "Search"')
        status, page = await alone(browser_type, browser, ref=box, text="kettle", submit=True)
    assert status is ToolStatus.OK
    assert "q=kettle" in page.splitlines()[0]


@pytest.mark.browser
@needs_chromium
@pytest.mark.anyio
async def test_browser_select_alone(pool: BrowserPool, site: str) -> None:
    from agentkit_tools.browser import browser_select

    async with pool.session() as browser:
        start = (await browser.open(site + "/form")).render()
        listbox = ref_of(start, 'combobox "Colour"')
        status, page = await alone(browser_select, browser, ref=listbox, values=["Green"])
    assert status is ToolStatus.OK
    assert page.startswith("[tab 1/1] picked Green")


@pytest.mark.browser
@needs_chromium
@pytest.mark.anyio
async def test_browser_press_alone(pool: BrowserPool, site: str) -> None:
    from agentkit_tools.browser import browser_press

    async with pool.session() as browser:
        start = (await browser.open(site + "/form")).render()
        status, page = await alone(
            browser_press, browser, key="x", ref=ref_of(start, 'textbox "Key"')
        )
    assert status is ToolStatus.OK
    assert page.startswith("[tab 1/1] key x")


@pytest.mark.browser
@needs_chromium
@pytest.mark.anyio
async def test_browser_scroll_alone(pool: BrowserPool, site: str) -> None:
    from agentkit_tools.browser import browser_scroll

    async with pool.session() as browser:
        await browser.open(site + "/tall")
        status, page = await alone(browser_scroll, browser, direction="down", pages=2)
    assert status is ToolStatus.OK
    assert "scrolled to 0-" not in page and "scrolled to " in page


@pytest.mark.browser
@needs_chromium
@pytest.mark.anyio
async def test_browser_back_alone(pool: BrowserPool, site: str) -> None:
    from agentkit_tools.browser import browser_back

    async with pool.session() as browser:
        await browser.open(site + "/")
        await browser.open(site + "/item")
        status, page = await alone(browser_back, browser)
    assert status is ToolStatus.OK
    assert page.startswith(f"[tab 1/1] Shop | {site}/")


@pytest.mark.browser
@needs_chromium
@pytest.mark.anyio
async def test_browser_read_alone(pool: BrowserPool, site: str) -> None:
    from agentkit_tools.browser import browser_read

    async with pool.session() as browser:
        await browser.open(site + "/")
        status, text = await alone(browser_read, browser)
        _, snapshot = await alone(browser_read, browser, format="snapshot")
    assert status is ToolStatus.OK and "Blue teapot" in text and "[ref=" not in text
    assert 'link "Blue teapot" [ref=' in snapshot


@pytest.mark.browser
@needs_chromium
@pytest.mark.anyio
async def test_browser_screenshot_alone(pool: BrowserPool, site: str) -> None:
    from agentkit_tools.browser import browser_screenshot

    async with pool.session() as browser:
        await browser.open(site + "/tall")
        status, shot = await alone(browser_screenshot, browser, full_page=True)
        assert status is ToolStatus.OK and shot.startswith("screenshot 1 taken of")
        assert browser.screenshots[0].height >= 5000  # the whole page, not the viewport


@pytest.mark.browser
@needs_chromium
@pytest.mark.anyio
async def test_browser_tabs_alone(pool: BrowserPool, site: str) -> None:
    from agentkit_tools.browser import browser_tabs

    async with pool.session() as browser:
        await browser.open(site + "/item")
        status, listed = await alone(browser_tabs, browser)
        assert status is ToolStatus.OK and listed == f"* 1. Teapot | {site}/item"
        status, view = await alone(browser_tabs, browser, switch_to=1)
        assert status is ToolStatus.OK and view.startswith("[tab 1/1] Teapot")
        status, error = await alone(browser_tabs, browser, switch_to=3)
        assert status is ToolStatus.ERROR and "no tab 3" in error
