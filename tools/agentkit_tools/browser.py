"""Browser tools for the model, over a :class:`~agentkit_sandboxes.browser.BrowserSession`.

Each run needs its own session (its own cookies, storage and tabs), while an agent's tools are
built once. So the tools find the session of the run that calls them in ``ctx.deps``: either the
deps object *is* the session, or it has a ``browser`` attribute holding it::

    tools = browser_tools()
    async with pool.session() as browser:
        await agent.run("...", deps=MyDeps(browser=browser, ...))

For a single fixed session (a script, a notebook) pass it instead: ``browser_tools(session)``.

Each tool is also a module-level :class:`~agentkit.tool.Tool` of its own (``browser_open``,
``browser_click``, ``browser_type``, ``browser_select``, ``browser_press``, ``browser_scroll``,
``browser_back``, ``browser_read``, ``browser_screenshot``, ``browser_tabs``);
``browser_tools()`` groups them in a :class:`~agentkit.toolset.Toolset`.

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

from agentkit.tool import RunContext, ToolError, tool
from agentkit.toolset import Toolset
from agentkit_sandboxes.browser import BrowserActionError, BrowserError, BrowserSession, PageView

T = TypeVar("T")

DEFAULT_PREFIX = "browser_"
DEFAULT_TIMEOUT_S = 60.0

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


async def _view(action: Awaitable[PageView]) -> str:
    return (await _attempt(action)).render()


@tool(timeout=DEFAULT_TIMEOUT_S)
async def browser_open(ctx: RunContext[Any], url: str) -> str:
    """Open a web page in the current tab and show its elements with refs (e.g. e12).

    Args:
        url: The address to load (http or https).
    """
    return await _view(session_from_deps(ctx).open(url))


@tool(timeout=DEFAULT_TIMEOUT_S)
async def browser_click(ctx: RunContext[Any], ref: str) -> str:
    """Click an element (link, button, checkbox) by its ref from the latest page view.

    Args:
        ref: The element reference, such as e12.
    """
    return await _view(session_from_deps(ctx).click(ref))


@tool(timeout=DEFAULT_TIMEOUT_S)
async def browser_type(ctx: RunContext[Any], ref: str, text: str, submit: bool = False) -> str:
    """Replace the content of a text field with text; optionally press Enter afterwards.

    Args:
        ref: The text field's reference, such as e7.
        text: The text to enter.
        submit: Press Enter after typing (submits most search boxes and forms).
    """
    return await _view(session_from_deps(ctx).type(ref, text, submit=submit))


@tool(timeout=DEFAULT_TIMEOUT_S)
async def browser_select(ctx: RunContext[Any], ref: str, values: list[str]) -> str:
    """Choose options of a drop-down list by their labels or values.

    Args:
        ref: The list's reference, such as e9.
        values: The option(s) to select.
    """
    return await _view(session_from_deps(ctx).select(ref, values))


@tool(timeout=DEFAULT_TIMEOUT_S)
async def browser_press(ctx: RunContext[Any], key: str, ref: str | None = None) -> str:
    """Press a key (Enter, Tab, Escape, ArrowDown, PageDown, Control+a...).

    Args:
        key: The key or chord to press.
        ref: The element to focus first; the focused element if omitted.
    """
    return await _view(session_from_deps(ctx).press(key, ref))


@tool(timeout=DEFAULT_TIMEOUT_S)
async def browser_scroll(
    ctx: RunContext[Any], direction: Literal["up", "down"] = "down", pages: float = 1.0
) -> str:
    """Scroll the current page.

    Args:
        direction: up or down.
        pages: How many screen heights to scroll.
    """
    return await _view(session_from_deps(ctx).scroll(direction, pages))


@tool(timeout=DEFAULT_TIMEOUT_S)
async def browser_back(ctx: RunContext[Any]) -> str:
    """Go back to the previous page of the current tab."""
    return await _view(session_from_deps(ctx).back())


@tool(timeout=DEFAULT_TIMEOUT_S)
async def browser_read(
    ctx: RunContext[Any], format: Literal["text", "snapshot"] = "text", offset: int = 0
) -> str:
    """Read the current page: its readable text, or its element snapshot with refs.

    Args:
        format: text for the page's words, snapshot for elements with refs to act on.
        offset: Character offset to continue a long page from.
    """
    return await _view(session_from_deps(ctx).read(format, offset))


@tool(timeout=DEFAULT_TIMEOUT_S)
async def browser_screenshot(ctx: RunContext[Any], full_page: bool = False) -> str:
    """Take a PNG screenshot of the current page; it is kept for the user, not shown to you.

    Args:
        full_page: Capture the whole page instead of the visible part.
    """
    browser = session_from_deps(ctx)
    shot = await _attempt(browser.screenshot(full_page=full_page))
    number = len(browser.screenshots)
    return f"screenshot {number} taken of {shot.url}: {shot.width}x{shot.height} PNG, {len(shot.png)} bytes"


@tool(timeout=DEFAULT_TIMEOUT_S)
async def browser_tabs(ctx: RunContext[Any], switch_to: int | None = None) -> str:
    """List the open tabs, or switch to one of them.

    Args:
        switch_to: The tab number (1 for the first) to make current.
    """
    browser = session_from_deps(ctx)
    if switch_to is not None:
        return await _view(browser.switch_tab(switch_to - 1))
    listed = await _attempt(browser.tabs())
    lines = [
        f"{'*' if t.active else ' '} {t.index + 1}. {t.title or '(no title)'} | {t.url}"
        for t in listed
    ]
    return "\n".join(lines) if lines else "no tabs are open"


BROWSER_TOOLS = Toolset(
    [
        browser_open,
        browser_click,
        browser_type,
        browser_select,
        browser_press,
        browser_scroll,
        browser_back,
        browser_read,
        browser_screenshot,
        browser_tabs,
    ]
)


def browser_tools(
    session: BrowserSession | None = None,
    *,
    resolve: SessionResolver | None = None,
    prefix: str = DEFAULT_PREFIX,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Toolset:
    """The browser tool set: open, click, type, select, press, scroll, back, read, screenshot,
    tabs. Bound to ``session`` if given, else to the session ``resolve(ctx)`` (by default
    :func:`session_from_deps`) returns for each call; names are ``prefix`` + the action."""
    tools = BROWSER_TOOLS
    if session is not None:
        tools = tools.with_deps(session)
    elif resolve is not None:
        tools = tools.with_deps_from(resolve)
    if prefix != DEFAULT_PREFIX:
        tools = tools.rename({t.name: prefix + t.name.removeprefix(DEFAULT_PREFIX) for t in tools})
    if timeout != DEFAULT_TIMEOUT_S:
        tools = tools.with_limits(timeout=timeout)
    return tools
