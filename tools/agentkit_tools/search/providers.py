"""Search providers behind one interface: the local index and web search APIs over httpx.

Every provider has ``name`` and ``async search(query, k) -> list[SearchHit]`` and raises
:class:`SearchError` with a message fit for the model (and the operator) on any failure: a
missing API key, a timeout, rate limiting (HTTP 429, retried while the wait it asks for is
short), server errors, or a body that is not the JSON expected.

- :class:`LocalSearch`: the embedded :class:`~agentkit_tools.search.index.LocalIndex`.
- :class:`SearxngSearch`: a SearXNG instance's JSON API (``/search?format=json``; the instance
  must list ``json`` under ``search.formats`` in its settings).
- :class:`BraveSearch`: the Brave Search API, key from ``BRAVE_API_KEY``.
- :class:`TavilySearch`: the Tavily API, key from ``TAVILY_API_KEY``.
"""

from __future__ import annotations

import os
from typing import Any, Protocol, runtime_checkable

import anyio
import httpx

from .documents import Document, SearchHit
from .index import LocalIndex

USER_AGENT = "agentkit-search/0.1"


class SearchError(Exception):
    """A search failed; the message says why and, where it can, what to do."""


@runtime_checkable
class SearchProvider(Protocol):
    name: str

    async def search(self, query: str, k: int = 5) -> list[SearchHit]: ...


@runtime_checkable
class DocumentStore(Protocol):
    """A provider whose results can be opened by id (the local index)."""

    async def document(self, doc_id: str) -> Document | None: ...


class LocalSearch:
    """The embedded index as a provider."""

    name = "local"

    def __init__(self, index: LocalIndex) -> None:
        self.index = index

    async def search(self, query: str, k: int = 5) -> list[SearchHit]:
        return await self.index.asearch(query, k)

    async def document(self, doc_id: str) -> Document | None:
        return await self.index.aget(doc_id)


class HttpSearch:
    """Shared HTTP behaviour: timeouts, 429 handling with bounded retries, error messages."""

    name = "web"

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        retries: int = 2,
        max_retry_wait: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.max_retry_wait = max_retry_wait
        self._transport = transport

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """The decoded JSON body of a successful response, else :class:`SearchError`."""
        all_headers = {"Accept": "application/json", "User-Agent": USER_AGENT, **(headers or {})}
        async with httpx.AsyncClient(
            timeout=self.timeout, transport=self._transport, headers=all_headers
        ) as client:
            for attempt in range(self.retries + 1):
                try:
                    response = await client.request(
                        method, self.base_url + path, params=params, json=json
                    )
                except httpx.TimeoutException as exc:
                    raise SearchError(
                        f"{self.name} search timed out after {self.timeout:g} s"
                    ) from exc
                except httpx.HTTPError as exc:
                    raise SearchError(f"{self.name} search could not connect: {exc}") from exc
                if response.status_code == 429:
                    wait = _retry_after(response)
                    if attempt < self.retries and wait is not None and wait <= self.max_retry_wait:
                        await anyio.sleep(wait)
                        continue
                    hint = f"; it asks to wait {wait:g} s" if wait is not None else ""
                    raise SearchError(f"{self.name} search is rate limited (HTTP 429){hint}")
                return self._decode(response)
        raise AssertionError("unreachable")

    def _decode(self, response: httpx.Response) -> Any:
        status = response.status_code
        if status in (401, 403):
            raise SearchError(
                f"{self.name} search refused the request (HTTP {status}): {self._auth_hint()}"
            )
        if status >= 400:
            detail = response.text.strip().replace("\n", " ")[:200]
            raise SearchError(f"{self.name} search failed with HTTP {status}: {detail}")
        try:
            return response.json()
        except ValueError as exc:
            kind = response.headers.get("content-type", "unknown type")
            raise SearchError(
                f"{self.name} search returned a body that is not JSON ({kind}, "
                f"{len(response.content)} bytes)"
            ) from exc

    def _auth_hint(self) -> str:
        return "check the API key"


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _results(body: Any, *path: str) -> list[Any]:
    """``body[path...]`` as a list, or a :class:`SearchError` naming the missing field."""
    node = body
    for key in path:
        if not isinstance(node, dict) or key not in node:
            if isinstance(node, dict) and key != path[-1]:
                return []  # an absent section (e.g. no web results at all) means no hits
            raise SearchError(f"unexpected response shape: no {'.'.join(path)!r} list")
        node = node[key]
    if not isinstance(node, list):
        raise SearchError(f"unexpected response shape: {'.'.join(path)!r} is not a list")
    return node


def _hit(item: Any, source: str, snippet_key: str, rank: int) -> SearchHit | None:
    if not isinstance(item, dict) or not isinstance(item.get("url"), str):
        return None
    score = item.get("score")
    return SearchHit(
        id=item["url"],
        url=item["url"],
        title=str(item.get("title") or item["url"]),
        snippet=" ".join(str(item.get(snippet_key) or "").split())[:500],
        score=float(score) if isinstance(score, int | float) else 1.0 / (rank + 1),
        source=source,
    )


def _key(explicit: str | None, *variables: str, provider: str) -> str:
    for value in (explicit, *(os.environ.get(v) for v in variables)):
        if value:
            return value
    raise SearchError(f"{provider} search needs an API key: set {variables[0]}")


class SearxngSearch(HttpSearch):
    """A SearXNG instance (self-hosted metasearch), through its JSON API."""

    name = "searxng"

    def __init__(self, base_url: str | None = None, **options: Any) -> None:
        url = base_url or os.environ.get("SEARXNG_URL")
        if not url:
            raise SearchError("searxng search needs the instance URL: set SEARXNG_URL")
        super().__init__(url, **options)

    async def search(self, query: str, k: int = 5) -> list[SearchHit]:
        body = await self._request("GET", "/search", params={"q": query, "format": "json"})
        hits = (
            _hit(item, self.name, "content", i) for i, item in enumerate(_results(body, "results"))
        )
        return [h for h in hits if h is not None][:k]

    def _auth_hint(self) -> str:
        return "the instance must allow the json format (search.formats in settings.yml)"


class BraveSearch(HttpSearch):
    """The Brave Search web API."""

    name = "brave"

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str = "https://api.search.brave.com/res/v1",
        **options: Any,
    ) -> None:
        self.api_key = _key(api_key, "BRAVE_API_KEY", "BRAVE_SEARCH_API_KEY", provider="brave")
        super().__init__(base_url, **options)

    async def search(self, query: str, k: int = 5) -> list[SearchHit]:
        body = await self._request(
            "GET",
            "/web/search",
            params={"q": query, "count": max(1, min(k, 20))},
            headers={"X-Subscription-Token": self.api_key},
        )
        items = _results(body, "web", "results")
        hits = (_hit(item, self.name, "description", i) for i, item in enumerate(items))
        return [h for h in hits if h is not None][:k]

    def _auth_hint(self) -> str:
        return "check BRAVE_API_KEY"


class TavilySearch(HttpSearch):
    """The Tavily search API."""

    name = "tavily"

    def __init__(
        self, api_key: str | None = None, base_url: str = "https://api.tavily.com", **options: Any
    ) -> None:
        self.api_key = _key(api_key, "TAVILY_API_KEY", provider="tavily")
        super().__init__(base_url, **options)

    async def search(self, query: str, k: int = 5) -> list[SearchHit]:
        body = await self._request(
            "POST",
            "/search",
            json={"query": query, "max_results": max(1, min(k, 20))},
            headers={"Authorization": f"Bearer {self.api_key}"},
        )
        hits = (
            _hit(item, self.name, "content", i) for i, item in enumerate(_results(body, "results"))
        )
        return [h for h in hits if h is not None][:k]

    def _auth_hint(self) -> str:
        return "check TAVILY_API_KEY"
