"""The browser's settings, errors and observations (what an action returns to the model)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .browser_container import BrowserContainer
from .browser_policy import DomainPolicy

CHROMIUM_CANDIDATES = (
    "/usr/lib/chromium/chromium",
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
)

# Flags for a quiet, headless, container-friendly Chromium (no background traffic of its own).
# Pages reach the network only through each session's egress proxy (a per-context setting);
# these flags close what a proxy does not see: WebRTC's own UDP, QUIC, and any host name
# Chromium would resolve itself (every name fails; the proxy at 127.0.0.1 needs none).
CONTAINMENT_ARGS = (
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--disable-quic",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
)
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--disable-extensions",
    "--disable-domain-reliability",
    "--disable-breakpad",
    "--metrics-recording-only",
    "--no-first-run",
    "--mute-audio",
    "--no-proxy-server",
    *CONTAINMENT_ARGS,
)


class BrowserError(Exception):
    """The browser could not be started or used at all (missing Chromium, crashed process)."""


class BrowserActionError(Exception):
    """An action failed; the message is written for the model and says what to do next."""


def find_chromium() -> str | None:
    """The Chromium executable: ``$AGENTKIT_CHROMIUM``, else Debian's real binary or wrapper."""
    configured = os.environ.get("AGENTKIT_CHROMIUM")
    if configured:
        return configured if os.path.exists(configured) else None
    for candidate in CHROMIUM_CANDIDATES:
        if os.path.exists(candidate):
            return candidate
    return shutil.which("chromium")


class BrowserLimits(BaseModel):
    """Bounds on what one session may cost."""

    model_config = ConfigDict(frozen=True)

    action_timeout_s: float = Field(10.0, gt=0, description="Bound on one action (click, read...).")
    navigation_timeout_s: float = Field(15.0, gt=0, description="Bound on loading a page.")
    max_page_bytes: int = Field(5_000_000, gt=0, description="Largest main document accepted.")
    max_dom_nodes: int = Field(50_000, gt=0, description="Pages with more elements are refused.")
    max_dialogs: int = Field(10, ge=0, description="Dialogs dismissed before the page is closed.")
    max_tabs: int = Field(8, gt=0)
    max_view_chars: int = Field(6_000, gt=100, description="Characters of text or snapshot shown.")
    viewport_width: int = 1280
    viewport_height: int = 800


class BrowserConfig(BaseModel):
    """How the pooled Chromium is launched and what each session gets by default."""

    executable_path: str | None = None
    headless: bool = True
    args: tuple[str, ...] = CHROMIUM_ARGS
    cdp_endpoint: str | None = Field(
        None,
        description="Connect over CDP to a Chromium started elsewhere (another process, a "
        "container) instead of launching one; its owner must give it CONTAINMENT_ARGS.",
    )
    container: BrowserContainer | None = Field(
        None, description="Run Chromium in a Docker container with no network (see there)."
    )
    max_sessions: int = Field(8, gt=0, description="Concurrent contexts on one browser.")
    policy: DomainPolicy = DomainPolicy()
    limits: BrowserLimits = BrowserLimits()
    accept_downloads: bool = False
    user_agent: str | None = None
    locale: str = "en-US"


class PageView(BaseModel):
    """What the model sees after an action: where it is and a window on the page."""

    url: str
    title: str
    tab: int
    tabs: int
    kind: Literal["snapshot", "text"]
    body: str
    offset: int = 0
    total_chars: int = 0
    truncated: bool = False
    note: str | None = None
    blocked: tuple[str, ...] = Field(
        (), description="Requests the network policy refused since the previous view."
    )

    def render(self) -> str:
        head = f"[tab {self.tab + 1}/{self.tabs}] {self.title or '(no title)'} | {self.url}"
        lines = [head]
        if self.note:
            lines.append(self.note)
        lines.extend(f"[blocked by the network policy: {line}]" for line in self.blocked)
        lines.append(self.body if self.body else "(empty page)")
        if self.truncated:
            end = self.offset + len(self.body)
            more = f"read with offset={end} for more" if end < self.total_chars else "the end"
            lines.append(
                f"[truncated: showed characters {self.offset}-{end} of {self.total_chars}; {more}]"
            )
        return "\n".join(lines)


class TabInfo(BaseModel):
    index: int
    url: str
    title: str
    active: bool


@dataclass(frozen=True)
class Screenshot:
    png: bytes
    width: int
    height: int
    url: str
