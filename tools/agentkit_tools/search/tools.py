"""Search tools for the model: ``search``, ``read_document`` and ``read_url``.

Each is a module-level :class:`~agentkit.tool.Tool` that finds its resources in ``ctx.deps``:
the provider (a :class:`SearchProvider` or a :class:`LocalIndex`) as ``deps.search`` or as the
deps itself; for ``read_url`` an optional ``deps.reader`` (a :class:`PageReader`, else a default
one); for ``read_document`` an optional ``deps.max_doc_chars``. :class:`SearchDeps` holds all
three.

An index or a web provider is shared by every run and only read, so ``search_tools`` usually
binds it when the toolset is built (unlike the browser tools, which find the run's own session
in ``ctx.deps``)::

    index = LocalIndex.open("docs.index")
    tools = search_tools(index)                  # search + read_document + read_url
    tools = search_tools(BraveSearch())          # web search + read_url
    tools = search_tools()                       # provider from ctx.deps.search at call time
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agentkit.tool import RunContext, ToolError, tool
from agentkit.toolset import Toolset

from .documents import SearchHit
from .index import LocalIndex
from .providers import DocumentStore, LocalSearch, SearchError, SearchProvider
from .reader import PageReader, ReadError

MAX_RESULTS = 10
DEFAULT_MAX_DOC_CHARS = 8_000
DEFAULT_TIMEOUT_S = 30.0
_DEFAULT_READER = PageReader()


@dataclass(frozen=True)
class SearchDeps:
    """What the search tools use from ``ctx.deps`` (every field optional)."""

    search: SearchProvider | LocalIndex | None = None
    reader: PageReader | None = None
    max_doc_chars: int = DEFAULT_MAX_DOC_CHARS


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


def _provider_in(deps: Any) -> SearchProvider | None:
    return _as_provider(getattr(deps, "search", None)) or _as_provider(deps)


def provider_of(ctx: RunContext[Any]) -> SearchProvider:
    """The calling run's search provider: ``ctx.deps.search`` or ``ctx.deps`` itself."""
    found = _provider_in(ctx.deps)
    if found is None:
        raise ToolError("no search index or provider is available in this run (deps.search)")
    return found


def reader_of(ctx: RunContext[Any]) -> PageReader:
    """The page reader for ``read_url``: ``ctx.deps.reader``, else a default one."""
    found = getattr(ctx.deps, "reader", None)
    return found if isinstance(found, PageReader) else _DEFAULT_READER


def max_doc_chars_of(ctx: RunContext[Any]) -> int:
    """How many characters ``read_document`` shows at once: ``ctx.deps.max_doc_chars``."""
    found = getattr(ctx.deps, "max_doc_chars", None)
    if isinstance(found, int) and not isinstance(found, bool) and found > 0:
        return found
    return DEFAULT_MAX_DOC_CHARS


@tool(timeout=DEFAULT_TIMEOUT_S)
async def search(ctx: RunContext[Any], query: str, k: int = 5) -> str:
    """Search for documents; returns ranked results with ids, titles and snippets.

    Args:
        query: Keywords to look for; put exact phrases in double quotes.
        k: How many results to return (1-10).
    """
    if not query.strip():
        raise ToolError("the query is empty")
    try:
        hits = await provider_of(ctx).search(query, max(1, min(k, MAX_RESULTS)))
    except SearchError as exc:
        raise ToolError(str(exc)) from exc
    return render_hits(query, hits)


@tool(timeout=DEFAULT_TIMEOUT_S)
async def read_document(ctx: RunContext[Any], id: str, offset: int = 0) -> str:
    """Read a document found by search, by its id.

    Args:
        id: The document id shown in brackets in the search results.
        offset: Character offset to continue a long document from.
    """
    store = provider_of(ctx)
    max_doc_chars = max_doc_chars_of(ctx)
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


@tool(timeout=DEFAULT_TIMEOUT_S)
async def read_url(ctx: RunContext[Any], url: str, offset: int = 0) -> str:
    """Fetch a web page and return its main text without navigation or ads.

    Args:
        url: The page address (http or https).
        offset: Character offset to continue a long page from.
    """
    try:
        page = await reader_of(ctx).read(url, offset=offset)
    except ReadError as exc:
        raise ToolError(str(exc)) from exc
    return page.render()


def search_tools(
    provider: SearchProvider | LocalIndex | None = None,
    *,
    reader: PageReader | None = None,
    read_urls: bool = True,
    max_doc_chars: int = DEFAULT_MAX_DOC_CHARS,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Toolset:
    """The search tool set. ``read_document`` is included when the provider can open its results
    by id (the local index, or any provider when unbound); ``read_url`` when ``read_urls``."""
    bound = _as_provider(provider) if provider is not None else None
    if provider is not None and bound is None:
        raise TypeError(f"not a search provider or index: {provider!r}")
    chosen = [search]
    if bound is None or isinstance(bound, DocumentStore):
        chosen.append(read_document)
    if read_urls:
        chosen.append(read_url)
    tools = Toolset(chosen)
    if bound is not None or reader is not None or max_doc_chars != DEFAULT_MAX_DOC_CHARS:

        def resources(ctx: RunContext[Any]) -> SearchDeps:
            found = bound if bound is not None else _provider_in(ctx.deps)
            return SearchDeps(search=found, reader=reader, max_doc_chars=max_doc_chars)

        tools = tools.with_deps_from(resources)
    if timeout != DEFAULT_TIMEOUT_S:
        tools = tools.with_limits(timeout=timeout)
    return tools
