"""Fetch a web page over HTTP and turn it into clean text, within size and time bounds.

The body is streamed and cut at ``max_bytes``; HTML goes through trafilatura (main content, no
navigation or boilerplate) when it is installed, falling back to a plain tag stripper; text, JSON
and Markdown pass through. Every request, redirect hops included, is checked against the domain
policy, and its host is resolved and judged by address as the browser's egress proxy does:
loopback, link-local and private addresses are refused unless the policy names them
(``DomainPolicy(allow_private=...)``). The text is windowed (``offset``, ``max_chars``) with
truncation reported.

Not contained: httpx resolves the host again when it connects, so a name whose DNS answer changes
between the check and the connection (rebinding) is not caught here; the browser's proxy, which
connects to the address it checked, is.
"""

from __future__ import annotations

import anyio.to_thread
import httpx
from pydantic import BaseModel

from agentkit_sandboxes.browser import DomainPolicy

from .documents import html_to_text
from .providers import USER_AGENT

TEXT_TYPES = ("text/plain", "text/markdown", "application/json", "text/csv", "application/xml")


class ReadError(Exception):
    """The page could not be fetched or read; the message is meant for the model."""


class ReadPage(BaseModel):
    url: str
    title: str
    text: str
    offset: int = 0
    total_chars: int = 0
    truncated: bool = False
    bytes_read: int = 0
    cut_at_bytes: bool = False

    def render(self) -> str:
        lines = [f"{self.title or '(no title)'} | {self.url}", self.text or "(no readable text)"]
        notes = []
        if self.cut_at_bytes:
            notes.append(f"the page was cut after {self.bytes_read} bytes")
        if self.truncated:
            end = self.offset + len(self.text)
            more = f"read with offset={end} for more" if end < self.total_chars else "the end"
            notes.append(f"showed characters {self.offset}-{end} of {self.total_chars}; {more}")
        if notes:
            lines.append("[truncated: " + "; ".join(notes) + "]")
        return "\n".join(lines)


class PageReader:
    """Reads pages for the model. One instance can serve many runs."""

    def __init__(
        self,
        *,
        policy: DomainPolicy | None = None,
        timeout: float = 15.0,
        max_bytes: int = 2_000_000,
        max_chars: int = 8_000,
        max_redirects: int = 5,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.policy = policy or DomainPolicy()
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_chars = max_chars
        self.max_redirects = max_redirects
        self._transport = transport

    async def read(self, url: str, *, offset: int = 0) -> ReadPage:
        raw, final_url, content_type, cut = await self._fetch(url.strip())
        charset = _charset(content_type)
        markup = raw.decode(charset, errors="replace")
        if "html" in content_type or (not content_type and markup.lstrip()[:1] == "<"):
            title, text = await anyio.to_thread.run_sync(lambda: extract_text(markup))
        elif content_type.startswith(TEXT_TYPES) or content_type.startswith("text/"):
            title, text = "", markup.strip()
        else:
            raise ReadError(f"{final_url} is {content_type or 'of unknown type'}, not text or HTML")
        offset = max(0, min(offset, len(text)))
        window = text[offset : offset + self.max_chars]
        return ReadPage(
            url=final_url,
            title=title,
            text=window,
            offset=offset,
            total_chars=len(text),
            truncated=offset > 0 or offset + len(window) < len(text),
            bytes_read=len(raw),
            cut_at_bytes=cut,
        )

    async def _fetch(self, url: str) -> tuple[bytes, str, str, bool]:
        async def check(request: httpx.Request) -> None:
            verdict = await self.policy.admit_url(str(request.url))
            reason = verdict if isinstance(verdict, str) else verdict.reason
            if reason is not None:
                raise ReadError(f"cannot read {request.url}: {reason}")

        reason = self.policy.check(url)
        if reason is not None:
            raise ReadError(f"cannot read {url}: {reason}")
        try:
            async with (
                httpx.AsyncClient(
                    timeout=self.timeout,
                    follow_redirects=True,
                    max_redirects=self.max_redirects,
                    transport=self._transport,
                    headers={
                        "User-Agent": USER_AGENT,
                        "Accept": "text/html,text/*;q=0.9,*/*;q=0.5",
                    },
                    event_hooks={"request": [check]},
                ) as client,
                client.stream("GET", url) as response,
            ):
                if response.status_code >= 400:
                    raise ReadError(f"{url} answered HTTP {response.status_code}")
                chunks: list[bytes] = []
                size = 0
                cut = False
                async for chunk in response.aiter_bytes():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size >= self.max_bytes:
                        cut = True
                        break
                raw = b"".join(chunks)[: self.max_bytes]
                content_type = response.headers.get("content-type", "").lower()
                return raw, str(response.url), content_type, cut
        except httpx.TimeoutException as exc:
            raise ReadError(f"reading {url} timed out after {self.timeout:g} s") from exc
        except httpx.TooManyRedirects as exc:
            raise ReadError(f"{url} redirected more than {self.max_redirects} times") from exc
        except httpx.HTTPError as exc:
            raise ReadError(f"could not read {url}: {exc}") from exc


def _charset(content_type: str) -> str:
    for part in content_type.split(";"):
        key, _, value = part.strip().partition("=")
        if key == "charset" and value:
            name = value.strip("\"' ")
            try:
                "".encode(name)
                return name
            except LookupError:
                break
    return "utf-8"


def extract_text(markup: str) -> tuple[str, str]:
    """(title, main text) of an HTML page: trafilatura if available, else a tag stripper."""
    fallback_title, fallback_text = html_to_text(markup)
    try:
        import trafilatura
    except ImportError:
        return fallback_title, fallback_text
    try:
        text = trafilatura.extract(
            markup, include_comments=False, include_tables=True, favor_recall=True
        )
    except Exception:
        text = None
    return fallback_title, (text or fallback_text).strip()
