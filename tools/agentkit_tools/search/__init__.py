"""Search: an embedded SQLite FTS5 index (with optional semantic vectors), web search providers and a page reader, as tools."""

from .documents import Document, SearchHit, read_folder
from .embeddings import EmbeddingUnavailable, MiniLMEmbedder, semantic_available
from .index import BuildReport, LocalIndex, SearchIndexError, SearchMode
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
    "EmbeddingUnavailable",
    "HttpSearch",
    "LocalIndex",
    "LocalSearch",
    "MiniLMEmbedder",
    "PageReader",
    "ReadError",
    "ReadPage",
    "SearchError",
    "SearchHit",
    "SearchIndexError",
    "SearchMode",
    "SearchProvider",
    "SearxngSearch",
    "TavilySearch",
    "read_folder",
    "render_hits",
    "search_tools",
    "semantic_available",
]
