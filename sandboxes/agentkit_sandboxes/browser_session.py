"""One agent run's browser: its own context, tabs and element refs, every action time-bounded.

A :class:`BrowserSession` exposes the actions a model needs (open, click, type, select, press,
scroll, back, read, screenshot, tabs); each returns a compact :class:`PageView` or raises
:class:`BrowserActionError`, whose message is meant for the model. A page that stops answering
(endless script, dialog storm) is closed and replaced by a blank tab, so the run goes on. Requests
the session's egress proxy refused are reported in the next view (``PageView.blocked``) and in the
error of an action that failed because of them.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import urlsplit

import anyio

from .browser_models import (
    BrowserActionError,
    BrowserLimits,
    PageView,
    Screenshot,
    TabInfo,
)
from .browser_policy import DomainPolicy
from .browser_proxy import BLOCKED_HEADER, BlockedRequest, EgressProxy

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext, Dialog, Page

T = TypeVar("T")

_PAGE_FACTS = """([limit, kind]) => {
  const nodes = document.getElementsByTagName('*').length;
  const text = kind === 'text' && nodes <= limit && document.body ? document.body.innerText : null;
  return [nodes, document.title, text];
}"""
_REF = re.compile(r"^\[?(?:ref=)?((?:f\d+)?e\d+)\]?$")


async def _quietly(awaitable: Awaitable[Any]) -> None:
    with suppress(Exception):
        await awaitable


class BrowserSession:
    """The browser as one agent run sees it: its own context, tabs and element refs.

    Actions are serialised (parallel tool calls on one page would race). Element refs (``e12``)
    come from the accessibility snapshot shown after each action; they stay valid for the same
    element until the page changes.
    """

    def __init__(
        self,
        context: BrowserContext,
        policy: DomainPolicy,
        limits: BrowserLimits,
        proxy: EgressProxy | None = None,
    ):
        self.context = context
        self.policy = policy
        self.limits = limits
        self.proxy = proxy
        self.screenshots: list[Screenshot] = []
        self._reported_blocks = 0
        self._pages: list[Page] = []
        self._active = 0
        self._lock = anyio.Lock()
        self._dialogs: dict[int, int] = {}
        self._storms: list[int] = []

    # --- setup and tab bookkeeping -------------------------------------------------------------

    async def setup(self) -> None:
        self.context.set_default_timeout(self.limits.action_timeout_s * 1000)
        self.context.set_default_navigation_timeout(self.limits.navigation_timeout_s * 1000)
        self.context.on("page", self._on_page)
        await self.context.new_page()

    @property
    def blocked(self) -> list[BlockedRequest]:
        """Every connection the network policy refused in this session, oldest first."""
        return list(self.proxy.blocked) if self.proxy is not None else []

    @property
    def blocked_requests(self) -> list[str]:
        """The targets of :attr:`blocked` (a URL for plain HTTP, ``host:port`` for a tunnel)."""
        return [b.target for b in self.blocked]

    def _new_blocks(self) -> tuple[str, ...]:
        """Blocks not yet shown to the model, as lines for a view or an error; marks them shown."""
        fresh = self.blocked[self._reported_blocks :]
        self._reported_blocks += len(fresh)
        lines = [f"{b.target} ({b.reason})" for b in fresh[:5]]
        if len(fresh) > 5:
            lines.append(f"and {len(fresh) - 5} more")
        return tuple(lines)

    def _on_page(self, page: Page) -> None:
        self._pages.append(page)
        self._active = len(self._pages) - 1
        page.on("dialog", self._on_dialog)
        page.on("close", self._on_close)
        if len(self._pages) > self.limits.max_tabs:
            # A page that opens tabs endlessly: drop the new one.
            self._pages.pop()
            self._active = len(self._pages) - 1
            page.remove_listener("close", self._on_close)
            _fire_and_forget(page.close())

    def _on_close(self, page: Page) -> None:
        if page in self._pages:
            index = self._pages.index(page)
            self._pages.remove(page)
            if self._active >= index:
                self._active = max(self._active - 1, 0)

    async def _on_dialog(self, dialog: Dialog) -> None:
        page = dialog.page
        key = id(page) if page is not None else 0
        count = self._dialogs[key] = self._dialogs.get(key, 0) + 1
        await _quietly(dialog.dismiss())
        if page is not None and count == self.limits.max_dialogs + 1:
            # A dialog storm: drop the tab now rather than wait for the action's timeout.
            self._storms.append(count)
            self._on_close(page)
            _fire_and_forget(page.close(run_before_unload=False))

    @property
    def page(self) -> Page:
        if not self._pages:
            raise BrowserActionError("no tab is open; open a URL first")
        return self._pages[self._active]

    async def _fresh_page(self) -> Page:
        page = await self.context.new_page()  # _on_page makes it active
        return page

    # --- guarded execution ---------------------------------------------------------------------

    async def _run(self, what: str, action: Callable[[], Awaitable[T]], *, bound: float) -> T:
        """Run ``action`` under the session lock and a hard time bound. On expiry, or when the
        page stopped answering, the tab is closed and replaced so that the run can go on."""
        from playwright.async_api import Error as PlaywrightError

        async with self._lock:
            if not self._pages:
                await self._fresh_page()
            hung = False
            try:
                with anyio.fail_after(bound + 2.0):
                    return await action()
            except TimeoutError:
                hung = True
                message = f"{what} did not finish within {bound:g} s"
            except PlaywrightError as exc:
                message = f"{what} failed: {_first_line(exc)}"
                hung = "Timeout" in type(exc).__name__ or "Timeout" in str(exc)[:60]
            if self._storms:
                self._storms.clear()
                message += (
                    f"; the page kept opening dialogs (more than {self.limits.max_dialogs}) and "
                    "its tab was closed. Open another URL to continue"
                )
            elif hung and not await self._responsive():
                await self._replace_active_page()
                message += (
                    "; the page stopped responding (endless script?) and its tab was "
                    "closed. Open another URL to continue"
                )
            if not self._pages:
                await self._fresh_page()
            blocks = self._new_blocks()
            if blocks:
                message += "; blocked by the network policy: " + "; ".join(blocks)
            raise BrowserActionError(message)

    async def _responsive(self) -> bool:
        if not self._pages:
            return False
        with anyio.move_on_after(1.5):
            try:
                await self.page.evaluate("1")
                return True
            except Exception:
                return False
        return False

    async def _replace_active_page(self) -> None:
        if self._pages:
            old = self._pages[self._active]
            with anyio.move_on_after(5):
                await _quietly(old.close(run_before_unload=False))
            self._on_close(old)
            self._dialogs.pop(id(old), None)
        await self._fresh_page()

    # --- observations --------------------------------------------------------------------------

    async def _view(self, kind: Literal["snapshot", "text"], offset: int = 0) -> PageView:
        page = self.page
        # One round trip for the element count, the title and (for text) the text itself.
        nodes, title, text = await page.evaluate(_PAGE_FACTS, [self.limits.max_dom_nodes, kind])
        if isinstance(nodes, int) and nodes > self.limits.max_dom_nodes:
            raise BrowserActionError(
                f"the page has {nodes} elements, over the limit of {self.limits.max_dom_nodes}; "
                "it was not read"
            )
        if kind == "snapshot":
            full = await page.aria_snapshot(mode="ai")
        else:
            full = _squeeze_blank_lines(str(text or ""))
        offset = max(0, min(offset, len(full)))
        window = full[offset : offset + self.limits.max_view_chars]
        return PageView(
            url=page.url,
            title=str(title or ""),
            tab=self._active,
            tabs=len(self._pages),
            kind=kind,
            body=window,
            offset=offset,
            total_chars=len(full),
            truncated=offset + len(window) < len(full) or offset > 0,
            blocked=self._new_blocks(),
        )

    async def _settle(self, page: Page) -> None:
        """Give a navigation started by an action a moment to reach DOMContentLoaded."""
        with anyio.move_on_after(min(self.limits.navigation_timeout_s, 3.0)):
            await _quietly(page.wait_for_load_state("domcontentloaded"))

    async def _view_after(self, page: Page, note: str | None = None) -> PageView:
        await self._settle(page)
        view = await self._view_retrying()
        return view.model_copy(update={"note": note}) if note else view

    async def _view_retrying(self) -> PageView:
        """Read the active page; a navigation racing the read is retried a few times."""
        from playwright.async_api import Error as PlaywrightError

        for attempt in range(3):
            try:
                return await self._view("snapshot")
            except PlaywrightError as exc:
                if "destroyed" not in str(exc) and "navigat" not in str(exc):
                    raise
                if attempt == 2:
                    raise BrowserActionError(
                        "the page keeps navigating (redirect loop?) and could not be read"
                    ) from exc
                await self._settle(self.page)
        raise AssertionError("unreachable")

    # --- actions -------------------------------------------------------------------------------

    async def open(self, url: str) -> PageView:
        """Load ``url`` in the active tab and show its accessibility snapshot."""
        url = url.strip()
        if not urlsplit(url).scheme and "." in url.split("/")[0]:
            url = "https://" + url
        admission = await self.policy.admit_url(url)
        if isinstance(admission, str) or not admission.allowed:
            reason = admission if isinstance(admission, str) else admission.reason
            raise BrowserActionError(f"cannot open {url}: {reason}")

        async def go() -> PageView:
            page = self.page
            response = await self._goto(page, url)
            note = None
            if response is not None:
                refused = await response.header_value(BLOCKED_HEADER)
                if refused is not None:
                    self._new_blocks()  # said in the error below
                    raise BrowserActionError(
                        f"cannot open {url}: {response.url} was blocked by the network "
                        f"policy: {refused}"
                    )
                size = await self._document_size(response)
                if size > self.limits.max_page_bytes:
                    await _quietly(page.goto("about:blank"))
                    raise BrowserActionError(
                        f"{url} is {size} bytes, over the limit of {self.limits.max_page_bytes}"
                    )
                if response.status >= 400:
                    note = f"HTTP {response.status}"
            return await self._view_after(page, note)

        return await self._run(f"opening {url}", go, bound=self.limits.navigation_timeout_s)

    async def _goto(self, page: Page, url: str) -> Any:
        """``page.goto``, tried again (up to twice) when a navigation still under way (an error
        page being shown, a script redirect, the leftovers of a redirect loop) interrupts it;
        the caller's time bound holds over all tries."""
        from playwright.async_api import Error as PlaywrightError

        for _ in range(2):
            try:
                return await page.goto(url, wait_until="domcontentloaded")
            except PlaywrightError as exc:
                if "interrupted by another navigation" not in str(exc):
                    raise
                await self._settle(page)
        return await page.goto(url, wait_until="domcontentloaded")

    async def _document_size(self, response: Any) -> int:
        length = (await response.all_headers()).get("content-length")
        if length and length.isdigit():
            return int(length)
        try:
            return len(await response.body())
        except Exception:
            return 0

    def _locate(self, ref: str) -> Any:
        match = _REF.match(ref.strip())
        if not match:
            raise BrowserActionError(
                f"{ref!r} is not an element reference; use a ref such as e12 from the snapshot"
            )
        return self.page.locator(f"aria-ref={match.group(1)}")

    async def _on_element(
        self, what: str, ref: str, act: Callable[[Any], Awaitable[None]], *, wait: bool = True
    ) -> PageView:
        from playwright.async_api import Error as PlaywrightError

        locator = self._locate(ref)

        async def go() -> PageView:
            page = self.page
            try:
                found = await locator.count()
            except PlaywrightError:
                found = 0
            if not found:
                raise BrowserActionError(
                    f"no element {ref} on this page; read the page (snapshot) for fresh refs"
                )
            try:
                await act(locator)
            except PlaywrightError as exc:
                text = str(exc)
                if "aria-ref" in text and ("not found" in text or "did not" in text):
                    raise BrowserActionError(
                        f"no element {ref} on this page; read the page for fresh refs"
                    ) from exc
                raise
            return await self._view_after(self.page if wait else page)

        return await self._run(f"{what} {ref}", go, bound=self.limits.action_timeout_s)

    async def click(self, ref: str) -> PageView:
        return await self._on_element("clicking", ref, lambda loc: loc.click())

    async def type(self, ref: str, text: str, *, submit: bool = False) -> PageView:
        async def act(loc: Any) -> None:
            await loc.fill(text)
            if submit:
                await loc.press("Enter")

        return await self._on_element("typing into", ref, act)

    async def select(self, ref: str, values: list[str]) -> PageView:
        async def act(loc: Any) -> None:
            await loc.select_option(values)

        return await self._on_element("selecting in", ref, act)

    async def press(self, key: str, ref: str | None = None) -> PageView:
        if ref is not None:
            return await self._on_element("pressing a key in", ref, lambda loc: loc.press(key))

        async def go() -> PageView:
            await self.page.keyboard.press(key)
            return await self._view_after(self.page)

        return await self._run(f"pressing {key}", go, bound=self.limits.action_timeout_s)

    async def scroll(
        self, direction: Literal["up", "down"] = "down", pages: float = 1.0
    ) -> PageView:
        async def go() -> PageView:
            sign = -1 if direction == "up" else 1
            dy = sign * pages * self.limits.viewport_height
            await self.page.mouse.wheel(0, dy)
            await self.page.evaluate("() => new Promise(r => requestAnimationFrame(() => r(0)))")
            view = await self._view("snapshot")
            position = await self.page.evaluate(
                "() => [Math.round(scrollY), document.documentElement.scrollHeight, innerHeight]"
            )
            y, height, inner = (int(v) for v in position)
            return view.model_copy(update={"note": f"scrolled to {y}-{y + inner} of {height} px"})

        return await self._run("scrolling", go, bound=self.limits.action_timeout_s)

    async def back(self) -> PageView:
        async def go() -> PageView:
            response = await self.page.go_back(wait_until="domcontentloaded")
            note = None if response is not None else "no earlier page in this tab's history"
            return await self._view_after(self.page, note)

        return await self._run("going back", go, bound=self.limits.navigation_timeout_s)

    async def read(self, kind: Literal["snapshot", "text"] = "text", offset: int = 0) -> PageView:
        """The active page as readable text or as an accessibility snapshot with refs."""
        return await self._run(
            "reading the page", lambda: self._view(kind, offset), bound=self.limits.action_timeout_s
        )

    async def screenshot(self, *, full_page: bool = False) -> Screenshot:
        async def go() -> Screenshot:
            page = self.page
            png = await page.screenshot(full_page=full_page, type="png")
            width, height = _png_size(png)
            shot = Screenshot(png=png, width=width, height=height, url=page.url)
            self.screenshots.append(shot)
            return shot

        return await self._run("taking a screenshot", go, bound=self.limits.action_timeout_s)

    async def tabs(self) -> list[TabInfo]:
        async def go() -> list[TabInfo]:
            infos = []
            for index, page in enumerate(self._pages):
                with anyio.move_on_after(1.0):
                    title = await page.title()
                infos.append(
                    TabInfo(index=index, url=page.url, title=title, active=index == self._active)
                )
            return infos

        return await self._run("listing tabs", go, bound=self.limits.action_timeout_s)

    async def switch_tab(self, index: int) -> PageView:
        if not 0 <= index < len(self._pages):
            raise BrowserActionError(f"no tab {index + 1}; there are {len(self._pages)} tabs")
        self._active = index

        async def go() -> PageView:
            await self.page.bring_to_front()
            return await self._view("snapshot")

        return await self._run("switching tabs", go, bound=self.limits.action_timeout_s)

    async def cookies(self) -> list[dict[str, Any]]:
        return [dict(c) for c in await self.context.cookies()]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return re.sub(r"^\w+\.\w+: ", "", first)


def _squeeze_blank_lines(text: str) -> str:
    return re.sub(r"\n\s*\n+", "\n\n", text).strip()


def _png_size(png: bytes) -> tuple[int, int]:
    if png[:8] != b"\x89PNG\r\n\x1a\n" or len(png) < 24:
        raise BrowserActionError("the screenshot is not a PNG image")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def _fire_and_forget(awaitable: Awaitable[Any]) -> None:
    import asyncio

    async def run() -> None:
        await _quietly(awaitable)

    task = asyncio.ensure_future(run())
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)


_BACKGROUND: set[Any] = set()
