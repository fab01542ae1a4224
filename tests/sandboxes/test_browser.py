"""The browser sandbox against pages served on 127.0.0.1 by a server these tests start."""

from __future__ import annotations

import http.server
import os
import signal
import time
from pathlib import Path

import anyio
import pytest

from agentkit_sandboxes.browser import (
    BrowserActionError,
    BrowserConfig,
    BrowserLimits,
    BrowserPool,
    DomainPolicy,
)
from tests.browser_support import BROWSER_MODULE, loopback_policy, send_page, site_fixture

playwright = pytest.importorskip("playwright", reason="playwright is not installed")
pytestmark = BROWSER_MODULE

HOME = """<!doctype html><html><head><title>Home</title></head><body>
<h1>Welcome</h1>
<a href="/second">Second page</a>
<a href="/form">Contact form</a>
<a href="/popup" target="_blank">Open in new tab</a>
</body></html>"""

SECOND = """<!doctype html><html><head><title>Second</title></head><body>
<h1>Second page</h1><p>The secret word is marmalade.</p></body></html>"""

FORM = """<!doctype html><html><head><title>Form</title></head><body>
<form action="/submit" method="get">
<label>Name <input name="name"></label>
<label>Colour <select name="colour"><option>red</option><option>blue</option></select></label>
<button type="submit">Send</button>
</form></body></html>"""

STORAGE = """<!doctype html><html><head><title>Storage</title></head><body><p id=out></p>
<script>
const mine = new URLSearchParams(location.search).get('set');
if (mine) { localStorage.setItem('who', mine); document.cookie = 'who=' + mine + '; path=/'; }
document.getElementById('out').textContent =
  'local=' + localStorage.getItem('who') + ' cookie=' + document.cookie;
</script></body></html>"""

LONG = (
    "<html><head><title>Long</title></head><body>"
    + "".join(f"<p>Paragraph number {i} of a long page.</p>" for i in range(400))
    + "</body></html>"
)

ONE_ALERT = """<html><head><title>before</title></head><body><script>
alert('hello'); document.title = confirm('sure?') ? 'accepted' : 'dismissed';
</script></body></html>"""

HOSTILE = {
    "/loop": "<html><body><p>spinning</p><script>while (true) {}</script></body></html>",
    "/alerts": "<html><body><script>for (;;) { alert('again'); }</script></body></html>",
    "/huge": "<html><body><script>const b = document.body; for (let i = 0; i < 120000; i++)"
    " { b.appendChild(document.createElement('div')); }</script></body></html>",
    "/jsloop": "<html><body><p>bouncing</p><script>location.replace('/jsloop?' + Date.now())"
    "</script></body></html>",
}


class _Site(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if path.startswith("/redirect"):
            hop = int(path.removeprefix("/redirect") or 0)
            self.send_response(302)
            self.send_header("Location", f"/redirect{hop + 1}")
            self.end_headers()
            return
        if path == "/hang":
            time.sleep(LIMITS.navigation_timeout_s + 3)  # never answers in time
            return
        if path == "/download":
            data = b"secret,data\n" * 10
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Disposition", "attachment; filename=data.csv")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if path == "/submit":
            body = f"<html><head><title>Thanks</title></head><body><p>Got {query}</p></body></html>"
        elif path == "/big":
            body = "<html><body>" + "x" * 300_000 + "</body></html>"
        else:
            pages = {"/": HOME, "/second": SECOND, "/form": FORM, "/storage": STORAGE}
            pages |= {"/long": LONG, "/popup": SECOND, "/one-alert": ONE_ALERT} | HOSTILE
            if path not in pages:
                self.send_error(404)
                return
            body = pages[path]
        send_page(self, body.encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


site = site_fixture(_Site)


LIMITS = BrowserLimits(
    action_timeout_s=3, navigation_timeout_s=4, max_dom_nodes=20_000, max_page_bytes=200_000
)


def _config(site: str) -> BrowserConfig:
    return BrowserConfig(limits=LIMITS, policy=loopback_policy(site))


@pytest.fixture(scope="module")
def browser_config(site: str) -> BrowserConfig:
    return _config(site)


def _ref(snapshot: str, label: str) -> str:
    for line in snapshot.splitlines():
        if label in line and "[ref=" in line:
            return line.split("[ref=")[1].split("]")[0]
    raise AssertionError(f"no ref for {label!r} in:\n{snapshot}")


@pytest.mark.anyio
async def test_navigate_and_click_a_link_by_reference(browser_pool: BrowserPool, site: str) -> None:
    async with browser_pool.session() as browser:
        home = await browser.open(site + "/")
        assert home.title == "Home"
        assert "Second page" in home.body
        after = await browser.click(_ref(home.body, "Second page"))
        assert after.url == site + "/second"
        text = await browser.read("text")
        assert "marmalade" in text.body
        back = await browser.back()
        assert back.url == site + "/"


@pytest.mark.anyio
async def test_fill_select_and_submit_a_form(browser_pool: BrowserPool, site: str) -> None:
    async with browser_pool.session() as browser:
        form = await browser.open(site + "/form")
        await browser.type(_ref(form.body, "textbox"), "Ada Lovelace")
        await browser.select(_ref(form.body, "combobox"), ["blue"])
        result = await browser.click(_ref(form.body, 'button "Send"'))
        assert result.title == "Thanks"
        text = await browser.read("text")
        assert "name=Ada+Lovelace" in text.body
        assert "colour=blue" in text.body


@pytest.mark.anyio
async def test_type_with_submit_presses_enter(browser_pool: BrowserPool, site: str) -> None:
    async with browser_pool.session() as browser:
        form = await browser.open(site + "/form")
        result = await browser.type(_ref(form.body, "textbox"), "Grace", submit=True)
        assert "/submit?name=Grace" in result.url


@pytest.mark.anyio
async def test_screenshot_is_a_png_of_the_viewport(browser_pool: BrowserPool, site: str) -> None:
    async with browser_pool.session() as browser:
        await browser.open(site + "/")
        shot = await browser.screenshot()
        assert shot.png.startswith(b"\x89PNG\r\n\x1a\n")
        assert (shot.width, shot.height) == (LIMITS.viewport_width, LIMITS.viewport_height)
        assert browser.screenshots == [shot]


@pytest.mark.anyio
async def test_links_opening_tabs_are_listed_and_switchable(
    browser_pool: BrowserPool, site: str
) -> None:
    async with browser_pool.session() as browser:
        home = await browser.open(site + "/")
        await browser.click(_ref(home.body, "Open in new tab"))
        with anyio.fail_after(5):
            while len(await browser.tabs()) < 2:  # noqa: ASYNC110 (no event to wait on)
                await anyio.sleep(0.05)
        tabs = await browser.tabs()
        assert [t.active for t in tabs] == [False, True]
        first = await browser.switch_tab(0)
        assert first.title == "Home"
        with pytest.raises(BrowserActionError, match="no tab 5"):
            await browser.switch_tab(4)


@pytest.mark.anyio
async def test_long_text_is_windowed_with_truncation_reported(
    browser_pool: BrowserPool, site: str
) -> None:
    async with browser_pool.session() as browser:
        await browser.open(site + "/long")
        first = await browser.read("text")
        assert first.truncated
        assert first.total_chars > len(first.body)
        assert "read with offset=" in first.render()
        rest = await browser.read("text", offset=first.offset + len(first.body))
        assert rest.offset == len(first.body)
        assert "Paragraph number 399" in (first.body + rest.body) or rest.truncated


@pytest.mark.anyio
async def test_scroll_reports_position(browser_pool: BrowserPool, site: str) -> None:
    async with browser_pool.session() as browser:
        await browser.open(site + "/long")
        view = await browser.scroll("down", 2)
        assert view.note is not None
        assert not view.note.startswith("scrolled to 0-")


@pytest.mark.anyio
async def test_parallel_runs_do_not_share_cookies_or_storage(
    browser_pool: BrowserPool, site: str
) -> None:
    seen: dict[str, str] = {}

    async def run(name: str) -> None:
        async with browser_pool.session() as browser:
            await browser.open(f"{site}/storage?set={name}")
            await anyio.sleep(0.2)  # both runs have written before either reads again
            again = await browser.open(f"{site}/storage")
            seen[name] = (await browser.read("text")).body
            assert again.title == "Storage"

    async with anyio.create_task_group() as tg:
        tg.start_soon(run, "alice")
        tg.start_soon(run, "bob")
    assert seen["alice"] == "local=alice cookie=who=alice"
    assert seen["bob"] == "local=bob cookie=who=bob"
    async with browser_pool.session() as browser:
        await browser.open(f"{site}/storage")
        assert (await browser.read("text")).body == "local=null cookie="
        assert await browser.cookies() == []


@pytest.mark.anyio
async def test_bad_references_are_clear_errors(browser_pool: BrowserPool, site: str) -> None:
    async with browser_pool.session() as browser:
        await browser.open(site + "/")
        with pytest.raises(BrowserActionError, match="not an element reference"):
            await browser.click("the blue button")
        with pytest.raises(BrowserActionError, match="e999"):
            await browser.click("e999")


@pytest.mark.anyio
async def test_domain_policy_blocks_navigation_and_subrequests(
    browser_pool: BrowserPool, site: str
) -> None:
    async with browser_pool.session(policy=DomainPolicy(deny=("127.0.0.1",))) as browser:
        with pytest.raises(BrowserActionError, match="deny list"):
            await browser.open(site + "/")
    async with browser_pool.session(policy=DomainPolicy(allow=("example.org",))) as browser:
        with pytest.raises(BrowserActionError, match="not on the allow list"):
            await browser.open(site + "/")
        with pytest.raises(BrowserActionError, match="scheme 'file'"):
            await browser.open("file:///etc/passwd")


@pytest.mark.anyio
async def test_http_errors_are_noted(browser_pool: BrowserPool, site: str) -> None:
    async with browser_pool.session() as browser:
        view = await browser.open(site + "/missing")
        assert view.note == "HTTP 404"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/loop", "stopped responding"),
        ("/alerts", r"kept opening dialogs \(more than 10\)"),
        ("/huge", "elements, over the limit"),
        ("/redirect0", "ERR_TOO_MANY_REDIRECTS"),
        ("/jsloop", "navigat|did not finish|stopped responding"),
        ("/big", "over the limit of 200000"),
        ("/hang", "Timeout 4000ms exceeded|did not finish"),
    ],
)
async def test_hostile_pages_return_an_error_within_a_bound(
    browser_pool: BrowserPool, site: str, path: str, message: str
) -> None:
    bound = LIMITS.navigation_timeout_s + 2.0 + 1.5 + 5.0  # guard + probe + tab close
    async with browser_pool.session() as browser:
        with anyio.fail_after(bound + 5):
            with pytest.raises(BrowserActionError, match=message):
                await browser.open(site + path)
        # the session stays usable after the hostile page
        with anyio.fail_after(bound):
            view = await browser.open(site + "/second")
        assert view.title == "Second"


@pytest.mark.anyio
async def test_downloads_are_refused(browser_pool: BrowserPool, site: str) -> None:
    async with browser_pool.session() as browser:
        with pytest.raises(BrowserActionError, match=r"[Dd]ownload"):
            await browser.open(site + "/download")
        view = await browser.open(site + "/second")
        assert view.title == "Second"


@pytest.mark.anyio
async def test_a_dead_browser_is_relaunched_for_the_next_run(site: str) -> None:
    async with BrowserPool(_config(site)) as own:
        async with own.session() as browser:
            await browser.open(site + "/")
        assert own._browser is not None
        await own._browser.close()  # as if Chromium had crashed
        assert not own.started
        async with own.session() as browser:
            view = await browser.open(site + "/second")
        assert view.title == "Second"
        assert own.sessions_opened == 2


@pytest.mark.anyio
async def test_single_dialogs_are_dismissed_and_the_page_goes_on(
    browser_pool: BrowserPool, site: str
) -> None:
    async with browser_pool.session() as browser:
        view = await browser.open(site + "/one-alert")
        assert view.title == "dismissed"


@pytest.mark.anyio
async def test_runs_reuse_one_browser_process(browser_pool: BrowserPool, site: str) -> None:
    browser_before = browser_pool._browser
    opened_before = browser_pool.sessions_opened
    for _ in range(3):
        async with browser_pool.session() as browser:
            await browser.open(site + "/second")
    assert browser_pool._browser is browser_before
    assert browser_pool.sessions_opened == opened_before + 3


def _own_chromium_main_pids() -> list[int]:
    """Main Chromium processes descended from this test process (never anyone else's)."""
    me = os.getpid()
    parents: dict[int, int] = {}
    commands: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            commands[int(entry.name)] = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])

    def descends(pid: int) -> bool:
        while pid > 1:
            pid = parents.get(pid, 0)
            if pid == me:
                return True
        return False

    return [
        pid
        for pid, command in commands.items()
        if "chromium" in command.split("\0")[0] and "--type=" not in command and descends(pid)
    ]


@pytest.mark.anyio
async def test_a_killed_browser_is_relaunched_for_the_next_run(site: str) -> None:
    before = set(_own_chromium_main_pids())
    async with BrowserPool(_config(site)) as own:
        mine = set(_own_chromium_main_pids()) - before
        assert len(mine) == 1, "this pool's Chromium process was not found"
        first = own._browser
        async with own.session() as browser:
            await browser.open(site + "/")
        os.kill(mine.pop(), signal.SIGKILL)  # a crash or an OOM kill
        async with own.session() as browser:
            view = await browser.open(site + "/second")
        assert view.title == "Second"
        assert own._browser is not first
