"""Browser tools for the model, over a :class:`~agentkit.sandboxes.browser.BrowserSession`.

Each run needs its own session (its own cookies, storage and tabs), while an agent's tools are
built once. So the tools find the session of the run that calls them in ``ctx.deps``: either the
deps object *is* the session, or it has a ``browser`` attribute holding it::

    tools = browser_tools()
    async with pool.session() as browser:
        await agent.run("...", deps=MyDeps(browser=browser, ...))

For a single fixed session (a script, a notebook) pass it instead: ``browser_tools(session)``.

Every tool answers with a compact text observation: the tab, title and URL, then the page's
accessibility snapshot (elements carry refs such as ``e12`` to click by) or its readable text,
with truncation reported. Requests the session's network policy refused since the previous
observation are listed as ``[blocked by the network policy: <target> (<reason>)]`` lines.
Failures (a refused URL or redirect included) become :class:`~agentkit.ToolError` messages for
the model.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

from agentkit.sandboxes.browser import BrowserActionError, BrowserError, BrowserSession, PageView

from agentkit.tool import RunContext, Tool, ToolError, tool

T = TypeVar("T")

SessionResolver = Callable[[RunContext[Any]], BrowserSession]


def session_from_deps(ctx: RunContext[Any]) -> BrowserSession:
    """The browser session of the calling run: ``ctx.deps`` itself or ``ctx.deps.browser``."""
    deps = ctx.deps
    if isinstance(deps, BrowserSession):
        return deps
    found = getattr(deps, "browser", None)
    if isinstance(found, BrowserSession):
        return found
    raise ToolError(
        "no browser is available in this run (the caller must pass a BrowserSession as deps "
        "or as deps.browser)"
    )


async def _attempt(action: Awaitable[T]) -> T:
    try:
        return await action
    except (BrowserActionError, BrowserError) as exc:
        raise ToolError(str(exc)) from exc


def browser_tools(
    session: BrowserSession | None = None,
    *,
    resolve: SessionResolver | None = None,
    prefix: str = "browser_",
    timeout: float = 60.0,
) -> list[Tool]:
    """The browser tool set: open, click, type, select, press, scroll, back, read, screenshot,
    tabs. Bound to ``session`` if given, else to the session ``resolve(ctx)`` (by default
    :func:`session_from_deps`) returns for each call."""

    def current(ctx: RunContext[Any]) -> BrowserSession:
        if session is not None:
            return session
        return (resolve or session_from_deps)(ctx)

    async def view(action: Awaitable[PageView]) -> str:
        return (await _attempt(action)).render()

    @tool(name=prefix + "open", timeout=timeout)
    async def open_url(ctx: RunContext[Any], url: str) -> str:
        """Open a web page in the current tab and show its elements with refs (e.g. e12).

        Args:
            url: The address to load (http or https).
        """
        return await view(current(ctx).open(url))

    @tool(name=prefix + "click", timeout=timeout)
    async def click(ctx: RunContext[Any], ref: str) -> str:
        """Click an element (link, button, checkbox) by its ref from the latest page view.

        Args:
            ref: The element reference, such as e12.
        """
        return await view(current(ctx).click(ref))

    @tool(name=prefix + "type", timeout=timeout)
    async def type_text(ctx: RunContext[Any], ref: str, text: str, submit: bool = False) -> str:
        """Replace the content of a text field with text; optionally press Enter afterwards.

        Args:
            ref: The text field's reference, such as e7.
            text: The text to enter.
            submit: Press Enter after typing (submits most search boxes and forms).
        """
        return await view(current(ctx).type(ref, text, submit=submit))

    @tool(name=prefix + "select", timeout=timeout)
    async def select(ctx: RunContext[Any], ref: str, values: list[str]) -> str:
        """Choose options of a drop-down list by their labels or values.

        Args:
            ref: The list's reference, such as e9.
            values: The option(s) to select.
        """
        return await view(current(ctx).select(ref, values))

    @tool(name=prefix + "press", timeout=timeout)
    async def press(ctx: RunContext[Any], key: str, ref: str | None = None) -> str:
        """Press a key (Enter, Tab, Escape, ArrowDown, PageDown, Control+a...).

        Args:
            key: The key or chord to press.
            ref: The element to focus first; the focused element if omitted.
        """
        return await view(current(ctx).press(key, ref))

    @tool(name=prefix + "scroll", timeout=timeout)
    async def scroll(
        ctx: RunContext[Any], direction: Literal["up", "down"] = "down", pages: float = 1.0
    ) -> str:
        """Scroll the current page.

        Args:
            direction: up or down.
            pages: How many screen heights to scroll.
        """
        return await view(current(ctx).scroll(direction, pages))

    @tool(name=prefix + "back", timeout=timeout)
    async def back(ctx: RunContext[Any]) -> str:
        """Go back to the previous page of the current tab."""
        return await view(current(ctx).back())

    @tool(name=prefix + "read", timeout=timeout)
    async def read(
        ctx: RunContext[Any], format: Literal["text", "snapshot"] = "text", offset: int = 0
    ) -> str:
        """Read the current page: its readable text, or its element snapshot with refs.

        Args:
            format: text for the page's words, snapshot for elements with refs to act on.
            offset: Character offset to continue a long page from.
        """
        return await view(current(ctx).read(format, offset))

    @tool(name=prefix + "screenshot", timeout=timeout)
    async def screenshot(ctx: RunContext[Any], full_page: bool = False) -> str:
        """Take a PNG screenshot of the current page; it is kept for the user, not shown to you.

        Args:
            full_page: Capture the whole page instead of the visible part.
        """
        browser = current(ctx)
        shot = await _attempt(browser.screenshot(full_page=full_page))
        number = len(browser.screenshots)
        return f"screenshot {number} taken of {shot.url}: {shot.width}x{shot.height} PNG, {len(shot.png)} bytes"

    @tool(name=prefix + "tabs", timeout=timeout)
    async def tabs(ctx: RunContext[Any], switch_to: int | None = None) -> str:
        """List the open tabs, or switch to one of them.

        Args:
            switch_to: The tab number (1 for the first) to make current.
        """
        browser = current(ctx)
        if switch_to is not None:
            return await view(browser.switch_tab(switch_to - 1))
        listed = await _attempt(browser.tabs())
        lines = [
            f"{'*' if t.active else ' '} {t.index + 1}. {t.title or '(no title)'} | {t.url}"
            for t in listed
        ]
        return "\n".join(lines) if lines else "no tabs are open"

    return [open_url, click, type_text, select, press, scroll, back, read, screenshot, tabs]
