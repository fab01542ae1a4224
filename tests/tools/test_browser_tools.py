"""The browser tools as the model calls them: through Tool.call, with the session in deps."""

from __future__ import annotations

import http.server
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from agentkit.tool import RunContext, Tool, ToolStatus
from agentkit_sandboxes.browser import BrowserConfig, BrowserLimits, BrowserPool, BrowserSession
from agentkit_tools.browser import (
    browser_back,
    browser_click,
    browser_open,
    browser_press,
    browser_read,
    browser_screenshot,
    browser_scroll,
    browser_select,
    browser_tabs,
    browser_tools,
    browser_type,
)
from tests.browser_support import drives_chromium, loopback_policy, send_page, site_fixture

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
        body = PAGES.get(self.path.split("?")[0], "<title>Results</title>" + self.path)
        send_page(self, body.encode(), "text/html")

    def log_message(self, *args: object) -> None:
        pass


@dataclass
class Deps:
    browser: BrowserSession


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


site = site_fixture(_Site)


@pytest.fixture(scope="module")
def browser_config(site: str) -> BrowserConfig:
    return BrowserConfig(policy=loopback_policy(site))


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


@drives_chromium
async def test_browse_search_and_screenshot_through_tools(
    browser_pool: BrowserPool, site: str
) -> None:
    async with browser_pool.session(limits=BrowserLimits(max_view_chars=2000)) as browser:
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


@asynccontextmanager
async def opened(pool: BrowserPool, *urls: str) -> AsyncIterator[tuple[BrowserSession, str]]:
    """A session of ``pool`` that opened ``urls`` in turn, with the last one's rendered view."""
    async with pool.session() as browser:
        view = ""
        for url in urls:
            view = (await browser.open(url)).render()
        yield browser, view


@drives_chromium
async def test_browser_open_alone(browser_pool: BrowserPool, site: str) -> None:
    async with opened(browser_pool) as (browser, _):
        status, page = await alone(browser_open, browser, url=site + "/item")
    assert status is ToolStatus.OK
    assert page.startswith(f"[tab 1/1] Teapot | {site}/item")


@drives_chromium
async def test_browser_click_alone(browser_pool: BrowserPool, site: str) -> None:
    async with opened(browser_pool, site + "/") as (browser, start):
        status, page = await alone(browser_click, browser, ref=ref_of(start, 'link "Blue teapot"'))
    assert status is ToolStatus.OK
    assert page.startswith(f"[tab 1/1] Teapot | {site}/item")


@drives_chromium
async def test_browser_type_alone(browser_pool: BrowserPool, site: str) -> None:
    async with opened(browser_pool, site + "/") as (browser, start):
        box = ref_of(start, 'textbox "Search"')
        status, page = await alone(browser_type, browser, ref=box, text="kettle", submit=True)
    assert status is ToolStatus.OK
    assert "q=kettle" in page.splitlines()[0]


@drives_chromium
async def test_browser_select_alone(browser_pool: BrowserPool, site: str) -> None:
    async with opened(browser_pool, site + "/form") as (browser, start):
        listbox = ref_of(start, 'combobox "Colour"')
        status, page = await alone(browser_select, browser, ref=listbox, values=["Green"])
    assert status is ToolStatus.OK
    assert page.startswith("[tab 1/1] picked Green")


@drives_chromium
async def test_browser_press_alone(browser_pool: BrowserPool, site: str) -> None:
    async with opened(browser_pool, site + "/form") as (browser, start):
        key_box = ref_of(start, 'textbox "Key"')
        status, page = await alone(browser_press, browser, key="x", ref=key_box)
    assert status is ToolStatus.OK
    assert page.startswith("[tab 1/1] key x")


@drives_chromium
async def test_browser_scroll_alone(browser_pool: BrowserPool, site: str) -> None:
    async with opened(browser_pool, site + "/tall") as (browser, _):
        status, page = await alone(browser_scroll, browser, direction="down", pages=2)
    assert status is ToolStatus.OK
    assert "scrolled to 0-" not in page and "scrolled to " in page


@drives_chromium
async def test_browser_back_alone(browser_pool: BrowserPool, site: str) -> None:
    async with opened(browser_pool, site + "/", site + "/item") as (browser, _):
        status, page = await alone(browser_back, browser)
    assert status is ToolStatus.OK
    assert page.startswith(f"[tab 1/1] Shop | {site}/")


@drives_chromium
async def test_browser_read_alone(browser_pool: BrowserPool, site: str) -> None:
    async with opened(browser_pool, site + "/") as (browser, _):
        status, text = await alone(browser_read, browser)
        _, snapshot = await alone(browser_read, browser, format="snapshot")
    assert status is ToolStatus.OK and "Blue teapot" in text and "[ref=" not in text
    assert 'link "Blue teapot" [ref=' in snapshot


@drives_chromium
async def test_browser_screenshot_alone(browser_pool: BrowserPool, site: str) -> None:
    async with opened(browser_pool, site + "/tall") as (browser, _):
        status, shot = await alone(browser_screenshot, browser, full_page=True)
        assert status is ToolStatus.OK and shot.startswith("screenshot 1 taken of")
        assert browser.screenshots[0].height >= 5000  # the whole page, not the viewport


@drives_chromium
async def test_browser_tabs_alone(browser_pool: BrowserPool, site: str) -> None:
    async with opened(browser_pool, site + "/item") as (browser, _):
        status, listed = await alone(browser_tabs, browser)
        assert status is ToolStatus.OK and listed == f"* 1. Teapot | {site}/item"
        status, view = await alone(browser_tabs, browser, switch_to=1)
        assert status is ToolStatus.OK and view.startswith("[tab 1/1] Teapot")
        status, error = await alone(browser_tabs, browser, switch_to=3)
        assert status is ToolStatus.ERROR and "no tab 3" in error
