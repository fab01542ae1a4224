"""Search: an embedded SQLite FTS5 index, web search providers and a page reader, as tools."""

from .documents import Document, SearchHit, read_folder
from .index import BuildReport, LocalIndex, SearchIndexError
from .providers import (
    BraveSearch,
    HttpSearch,
    LocalSearch,
    SearchError,
    SearchProvider,
    SearxngSearch,
    TavilySearch,
)
from .reader import PageReader, ReadError, ReadPage
from .tools import render_hits, search_tools

__all__ = [
    "BraveSearch",
    "BuildReport",
    "Document",
    "HttpSearch",
    "LocalIndex",
    "LocalSearch",
    "PageReader",
    "ReadError",
    "ReadPage",
    "SearchError",
    "SearchHit",
    "SearchIndexError",
    "SearchProvider",
    "SearxngSearch",
    "TavilySearch",
    "read_folder",
    "render_hits",
    "search_tools",
]
