"""Search tools for the model: ``search``, ``read_document`` and ``read_url``.

An index or a web provider is shared by every run and only read, so these tools are bound when
they are built (unlike the browser tools, which find the run's own session in ``ctx.deps``)::

    index = LocalIndex.open("docs.index")
    tools = search_tools(index)                  # search + read_document + read_url
    tools = search_tools(BraveSearch())          # web search + read_url
    tools = search_tools()                       # provider from ctx.deps.search at call time
"""

from __future__ import annotations

from typing import Any

from agentkit.tool import RunContext, Tool, ToolError, tool

from .documents import SearchHit
from .index import LocalIndex
from .providers import DocumentStore, LocalSearch, SearchError, SearchProvider
from .reader import PageReader, ReadError

MAX_RESULTS = 10


def render_hits(query: str, hits: list[SearchHit]) -> str:
    if not hits:
        return f"no results for {query!r}"
    lines = []
    for rank, hit in enumerate(hits, start=1):
        where = f" | {hit.url}" if hit.url and hit.url != hit.id else ""
        lines.append(f"{rank}. [{hit.id}] {hit.title}{where}")
        if hit.snippet:
            lines.append(f"   {hit.snippet}")
    return "\n".join(lines)


def _as_provider(value: Any) -> SearchProvider | None:
    if isinstance(value, LocalIndex):
        return LocalSearch(value)
    if isinstance(value, SearchProvider):
        return value
    return None


def search_tools(
    provider: SearchProvider | LocalIndex | None = None,
    *,
    reader: PageReader | None = None,
    read_urls: bool = True,
    max_doc_chars: int = 8_000,
    timeout: float = 30.0,
) -> list[Tool]:
    """The search tool set. ``read_document`` is included when the provider can open its results
    by id (the local index, or any provider when unbound); ``read_url`` when ``read_urls``."""
    bound = _as_provider(provider) if provider is not None else None
    if provider is not None and bound is None:
        raise TypeError(f"not a search provider or index: {provider!r}")
    page_reader = reader or PageReader()

    def current(ctx: RunContext[Any]) -> SearchProvider:
        if bound is not None:
            return bound
        found = _as_provider(getattr(ctx.deps, "search", None))
        if found is None:
            raise ToolError("no search index or provider is available in this run (deps.search)")
        return found

    @tool(timeout=timeout)
    async def search(ctx: RunContext[Any], query: str, k: int = 5) -> str:
        """Search for documents; returns ranked results with ids, titles and snippets.

        Args:
            query: Keywords to look for; put exact phrases in double quotes.
            k: How many results to return (1-10).
        """
        if not query.strip():
            raise ToolError("the query is empty")
        try:
            hits = await current(ctx).search(query, max(1, min(k, MAX_RESULTS)))
        except SearchError as exc:
            raise ToolError(str(exc)) from exc
        return render_hits(query, hits)

    @tool(timeout=timeout)
    async def read_document(ctx: RunContext[Any], id: str, offset: int = 0) -> str:
        """Read a document found by search, by its id.

        Args:
            id: The document id shown in brackets in the search results.
            offset: Character offset to continue a long document from.
        """
        store = current(ctx)
        if not isinstance(store, DocumentStore):
            raise ToolError("these search results cannot be opened by id; use read_url")
        doc = await store.document(id)
        if doc is None:
            raise ToolError(f"no document with id {id!r}; use an id from the search results")
        start = max(0, min(offset, len(doc.text)))
        window = doc.text[start : start + max_doc_chars]
        head = f"[{doc.id}] {doc.title}" + (f" | {doc.url}" if doc.url else "")
        parts = [head, window]
        if start > 0 or start + len(window) < len(doc.text):
            end = start + len(window)
            more = f"read with offset={end} for more" if end < len(doc.text) else "the end"
            parts.append(f"[truncated: showed characters {start}-{end} of {len(doc.text)}; {more}]")
        return "\n".join(parts)

    @tool(timeout=timeout)
    async def read_url(url: str, offset: int = 0) -> str:
        """Fetch a web page and return its main text without navigation or ads.

        Args:
            url: The page address (http or https).
            offset: Character offset to continue a long page from.
        """
        try:
            page = await page_reader.read(url, offset=offset)
        except ReadError as exc:
            raise ToolError(str(exc)) from exc
        return page.render()

    tools = [search]
    if bound is None or isinstance(bound, DocumentStore):
        tools.append(read_document)
    if read_urls:
        tools.append(read_url)
    return tools
