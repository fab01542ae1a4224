"""A pooled headless Chromium driven by Playwright, with one isolated context per agent run.

:class:`BrowserPool` starts Playwright and one Chromium process once and reuses it; each agent
run gets a :class:`BrowserSession` (a fresh browser context: no cookies, storage or cache shared
with other runs) through ``async with pool.session() as browser``. Each session has its own
:class:`EgressProxy` on 127.0.0.1, the context's only way to the network: every connection a
page makes is checked there against the session's :class:`DomainPolicy`, which also refuses
loopback, link-local and private addresses unless they are named, and connects to the address it
checked. The session's actions and observations are in :mod:`.browser_session`.

Playwright's async API needs asyncio: use anyio with its asyncio backend.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio

from .browser_container import BrowserContainer, ContainerLaunch
from .browser_models import (
    CHROMIUM_ARGS,
    CHROMIUM_CANDIDATES,
    CONTAINMENT_ARGS,
    BrowserActionError,
    BrowserConfig,
    BrowserError,
    BrowserLimits,
    PageView,
    Screenshot,
    TabInfo,
    find_chromium,
)
from .browser_policy import Admission, DomainPolicy
from .browser_proxy import BlockedRequest, EgressProxy
from .browser_session import BrowserSession, _quietly

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Playwright

__all__ = [
    "CHROMIUM_ARGS",
    "CHROMIUM_CANDIDATES",
    "CONTAINMENT_ARGS",
    "Admission",
    "BlockedRequest",
    "BrowserActionError",
    "BrowserConfig",
    "BrowserContainer",
    "BrowserError",
    "BrowserLimits",
    "BrowserPool",
    "BrowserSession",
    "DomainPolicy",
    "EgressProxy",
    "PageView",
    "Screenshot",
    "TabInfo",
    "find_chromium",
]


class _BrowserDied(Exception):
    """No context could be opened on the running browser."""


class BrowserPool:
    """One Chromium process shared by many runs; each run gets its own context via
    :meth:`session`. Start-up is paid once (lazily on first use, or by :meth:`start`)."""

    def __init__(self, config: BrowserConfig | None = None) -> None:
        self.config = config or BrowserConfig()
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._start_lock = anyio.Lock()
        self._slots = anyio.Semaphore(self.config.max_sessions)
        self.sessions_opened = 0
        self._launch: ContainerLaunch | None = None
        container = self.config.container
        if container is not None and container.slots < self.config.max_sessions:
            raise ValueError("container.slots must be at least max_sessions")
        self._free_ports = list(range(container.slots if container else 0))

    async def __aenter__(self) -> BrowserPool:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def started(self) -> bool:
        return self._browser is not None and self._browser.is_connected()

    async def start(self) -> None:
        """Start Playwright and launch Chromium, or relaunch it if it has died."""
        async with self._start_lock:
            if self.started:
                return
            try:
                from playwright.async_api import async_playwright
            except ImportError as exc:
                raise BrowserError(
                    "playwright is not installed: pip install 'agentkit-sandboxes[browser]'"
                ) from exc
            endpoint = self.config.cdp_endpoint
            executable = self.config.executable_path or find_chromium()
            if endpoint is None and (
                executable is None or not await anyio.Path(executable).exists()
            ):
                raise BrowserError(
                    "Chromium not found: install Debian's chromium (apt-get install chromium) "
                    "or set AGENTKIT_CHROMIUM to the executable"
                )
            if self._playwright is None:
                self._playwright = await async_playwright().start()
            chromium = self._playwright.chromium
            try:
                if endpoint is not None:
                    self._browser = await chromium.connect_over_cdp(endpoint)
                else:
                    if self.config.container is not None:
                        assert executable is not None
                        self._drop_launch()
                        self._launch = ContainerLaunch(self.config.container, executable)
                        executable = str(self._launch.wrapper)
                    self._browser = await chromium.launch(
                        executable_path=executable,
                        headless=self.config.headless,
                        args=list(self.config.args),
                    )
            except Exception as exc:
                raise BrowserError(f"Chromium failed to start: {exc}") from exc

    async def close(self) -> None:
        async with self._start_lock:
            browser, self._browser = self._browser, None
            playwright, self._playwright = self._playwright, None
            with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                if browser is not None:
                    await _quietly(browser.close())
                if playwright is not None:
                    await _quietly(playwright.stop())
            self._drop_launch()

    def _drop_launch(self) -> None:
        if self._launch is not None:
            self._launch.cleanup()
            self._launch = None

    async def _new_context(self, limits: BrowserLimits, proxy: str) -> BrowserContext:
        await self.start()
        assert self._browser is not None
        return await self._browser.new_context(
            proxy={"server": proxy},
            accept_downloads=self.config.accept_downloads,
            viewport={"width": limits.viewport_width, "height": limits.viewport_height},
            user_agent=self.config.user_agent,
            locale=self.config.locale,
            service_workers="block",
        )

    @asynccontextmanager
    async def session(
        self, *, policy: DomainPolicy | None = None, limits: BrowserLimits | None = None
    ) -> AsyncIterator[BrowserSession]:
        """A fresh, isolated browser context for one run; closed (with everything it stored)
        on exit."""
        async with self._slots:
            lim = limits or self.config.limits
            chosen = policy or self.config.policy
            for attempt in (1, 2):
                await self.start()
                port = self._free_ports.pop() if self._launch is not None else None
                try:
                    async with self._session(chosen, lim, port) as session:
                        yield session
                        return
                except _BrowserDied:
                    # Crash or OOM kill since its last use: relaunch once, then give up.
                    await self.close()
                    if attempt == 2:
                        raise BrowserError("Chromium died twice while opening a session") from None
                finally:
                    if port is not None:
                        self._free_ports.append(port)

    @asynccontextmanager
    async def _session(
        self, policy: DomainPolicy, limits: BrowserLimits, port: int | None
    ) -> AsyncIterator[BrowserSession]:
        launch = self._launch
        where = launch.socket_path(port) if launch is not None and port is not None else None
        proxy = EgressProxy(policy, connect_timeout_s=limits.navigation_timeout_s, unix_path=where)
        async with proxy:
            if launch is not None and port is not None:
                server = launch.proxy_server(port)
            else:
                server = proxy.server
            try:
                context = await self._new_context(limits, server)
            except BrowserError:
                raise
            except Exception as exc:
                raise _BrowserDied from exc
            self.sessions_opened += 1
            session = BrowserSession(context, policy, limits, proxy)
            try:
                await session.setup()
                yield session
            finally:
                with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                    await _quietly(context.close())
