"""The embedded search index: SQLite FTS5 with BM25 ranking, in one file.

Why FTS5: it ships with Python (no dependency), stores the text beside the index (so ``get`` needs
nothing else), makes snippets, and answers in well under a millisecond for thousands of
documents; see ``benchmarks/README.md`` for the measured comparison with tantivy and bm25s.

Queries are plain words (any may match; BM25 ranks documents with more and rarer matches first,
titles weigh more than bodies), with ``"quoted phrases"`` kept together. Porter stemming makes
``indexing`` match ``indexed``.

Semantic search (``agentkit-tools[semantic]``): built with an embedder, the index also stores a
vector per document chunk (``vectors.py``), and ``search`` ranks by BM25 and by cosine
similarity and fuses the two rankings (reciprocal rank fusion), so "time off from work" finds
the document about vacation days that shares none of its words. Without the extra, or for an
index built without vectors, search is lexical as before.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import anyio.to_thread
from pydantic import BaseModel

from .documents import Document, DocumentProblem, SearchHit, read_folder
from .embeddings import Embedder, MiniLMEmbedder, semantic_available
from .vectors import (
    VECTOR_SCHEMA,
    VectorMatrix,
    embed_documents,
    load_matrix,
    reciprocal_rank_fusion,
    write_vectors,
)

SearchMode = Literal["auto", "lexical", "semantic", "hybrid"]
CANDIDATES = 50  # how deep each ranking goes before fusion

SCHEMA_VERSION = 1
TITLE_WEIGHT = 4.0
SNIPPET_WORDS = 30

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS docs(
    rowid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, title TEXT NOT NULL,
    text TEXT NOT NULL, url TEXT
);
CREATE VIRTUAL TABLE IF NOT EXISTS docs_fts USING fts5(
    title, text, content='docs', content_rowid='rowid',
    tokenize='porter unicode61 remove_diacritics 2'
);
"""

_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "how",
        "i",
        "in",
        "is",
        "it",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "with",
        "do",
        "does",
        "did",
        "can",
    ]
)
_PHRASE = re.compile(r'"([^"]+)"')
_WORD = re.compile(r"\w+", re.UNICODE)


class SearchIndexError(Exception):
    """The index file is missing, damaged or from another version."""


class BuildReport(BaseModel):
    path: str
    documents: int
    seconds: float
    problems: list[DocumentProblem]

    @property
    def docs_per_second(self) -> float:
        return self.documents / self.seconds if self.seconds > 0 else 0.0


def query_terms(query: str) -> list[str]:
    """The content words of a query, lower-cased, in order, without repeats."""
    words = _WORD.findall(query.lower())
    return list(dict.fromkeys(w for w in words if w not in _STOPWORDS)) or words


def snippet(text: str, terms: list[str], width: int = SNIPPET_WORDS) -> str:
    """The ``width``-word window of ``text`` holding the most query terms (matched on a shared
    prefix, a cheap stand-in for the index's stemming), with ellipses where it was cut."""
    words = text.split()
    if len(words) <= width:
        return " ".join(words)
    stems = tuple(t[:5] if len(t) > 5 else t for t in terms)
    hits = [1 if w.lower().strip(".,;:!?()[]{}\"'`").startswith(stems) else 0 for w in words]
    best, best_count, count = 0, -1, sum(hits[:width])
    for start in range(len(words) - width + 1):
        if start:
            count += hits[start + width - 1] - hits[start - 1]
        if count > best_count:
            best, best_count = start, count
    best = max(0, best - 2) if best_count > 0 else 0
    window = " ".join(words[best : best + width])
    return ("… " if best else "") + window + (" …" if best + width < len(words) else "")


def match_expression(query: str) -> str | None:
    """The FTS5 MATCH expression for a user query, or ``None`` when it has no words. Every term
    is quoted, so FTS5 operators and punctuation in the query cannot cause syntax errors."""
    phrases = [" ".join(_WORD.findall(p)) for p in _PHRASE.findall(query)]
    words = _WORD.findall(_PHRASE.sub(" ", query).lower())
    content = [w for w in words if w not in _STOPWORDS] or words
    terms = [f'"{p}"' for p in phrases if p] + [f'"{w}"' for w in dict.fromkeys(content)]
    return " OR ".join(terms) if terms else None


class LocalIndex:
    """A document index in one SQLite file (or in memory with ``":memory:"``).

    The synchronous methods are thread-safe; the ``a``-prefixed ones run them in a worker thread
    for async callers.
    """

    def __init__(
        self,
        path: str | Path = ":memory:",
        *,
        create: bool = True,
        embedder: Embedder | None = None,
    ) -> None:
        self.path = str(path)
        self.embedder: Embedder | None = None
        self._matrix: VectorMatrix | None = None
        if self.path != ":memory:" and not create and not Path(self.path).exists():
            raise SearchIndexError(
                f"no index at {self.path}; build one with: agentkit index build DIR"
            )
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._lock = threading.Lock()
        try:
            with self._lock, self._db:
                self._db.executescript(_SCHEMA)
                self._db.executescript(VECTOR_SCHEMA)
                self._db.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
                # Titles weigh more than bodies in the BM25 ranking (kept in the index's config).
                # Written only when it differs: rewriting it would invalidate the FTS5 state of
                # other connections to the same file ("SQL logic error" on their next query).
                rank = f"bm25({TITLE_WEIGHT}, 1.0)"
                stored = self._db.execute(
                    "SELECT v FROM docs_fts_config WHERE k = 'rank'"
                ).fetchone()
                if stored is None or stored[0] != rank:
                    self._db.execute(
                        "INSERT INTO docs_fts(docs_fts, rank) VALUES ('rank', ?)", (rank,)
                    )
            version = self._db.execute(
                "SELECT value FROM meta WHERE key='schema_version'"
            ).fetchone()
        except sqlite3.DatabaseError as exc:
            raise SearchIndexError(f"{self.path} is not a usable index: {exc}") from exc
        if version is None or int(version[0]) != SCHEMA_VERSION:
            raise SearchIndexError(f"{self.path} has index version {version}, not {SCHEMA_VERSION}")
        if embedder is not None:
            self.use_embedder(embedder)

    @property
    def embedding_model(self) -> str | None:
        """The model the stored vectors come from (``None``: the index has no vectors)."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key='embedding_model'").fetchone()
        return None if row is None else str(row[0])

    def use_embedder(self, embedder: Embedder) -> None:
        """Embed new documents and queries with ``embedder``; it must be the model the stored
        vectors come from."""
        stored = self.embedding_model
        if stored is not None and stored != embedder.model_id:
            raise SearchIndexError(
                f"{self.path} holds vectors of {stored}, not {embedder.model_id}; rebuild it"
            )
        self.embedder = embedder

    @classmethod
    def open(cls, path: str | Path, *, semantic: bool | None = None) -> LocalIndex:
        """An existing index; raises :class:`SearchIndexError` when there is none.

        An index with vectors gets the embedding model for its queries when it is installed
        (``semantic=None``); ``semantic=False`` keeps it lexical, ``True`` requires the model."""
        index = cls(path, create=False)
        if semantic is False or (index.embedding_model is None and not semantic):
            return index
        if semantic or semantic_available():
            index.use_embedder(MiniLMEmbedder())
        return index

    @classmethod
    def build(
        cls, folder: str | Path, path: str | Path = ":memory:", *, embedder: Embedder | None = None
    ) -> tuple[LocalIndex, BuildReport]:
        """Index every readable document under ``folder`` (replacing what ``path`` held); with
        an ``embedder``, with vectors for semantic search too."""
        root = Path(folder)
        if not root.is_dir():
            raise SearchIndexError(f"{root} is not a folder")
        started = time.perf_counter()
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        index = cls(path)
        index.clear()
        if embedder is not None:
            index.use_embedder(embedder)
        problems: list[DocumentProblem] = []
        count = index.add(read_folder(root, problems))
        index.optimize()
        report = BuildReport(
            path=str(path),
            documents=count,
            seconds=time.perf_counter() - started,
            problems=problems,
        )
        return index, report

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __len__(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT count(*) FROM docs").fetchone()
        return int(row[0])

    def clear(self) -> None:
        with self._lock, self._db:
            self._db.execute("INSERT INTO docs_fts(docs_fts) VALUES ('delete-all')")
            self._db.execute("DELETE FROM docs")
            self._db.execute("DELETE FROM vectors")
            self._db.execute("DELETE FROM meta WHERE key='embedding_model'")
        self._matrix = None

    def add(self, documents: Iterable[Document]) -> int:
        """Add or replace documents (by id); returns how many were written. With an embedder,
        their chunks are embedded first (outside the lock) and stored with them."""
        docs = list(documents)
        embedded = embed_documents(self.embedder, docs) if self.embedder is not None else None
        count = 0
        with self._lock, self._db:
            if self.embedder is not None:
                self._db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('embedding_model', ?)",
                    (self.embedder.model_id,),
                )
            for position, doc in enumerate(docs):
                old = self._db.execute(
                    "SELECT rowid, title, text FROM docs WHERE id = ?", (doc.id,)
                ).fetchone()
                if old is not None:
                    self._db.execute(
                        "INSERT INTO docs_fts(docs_fts, rowid, title, text) "
                        "VALUES ('delete', ?, ?, ?)",
                        old,
                    )
                    self._db.execute("DELETE FROM docs WHERE rowid = ?", (old[0],))
                    self._db.execute("DELETE FROM vectors WHERE rowid = ?", (old[0],))
                cursor = self._db.execute(
                    "INSERT INTO docs(id, title, text, url) VALUES (?, ?, ?, ?)",
                    (doc.id, doc.title, doc.text, doc.url),
                )
                self._db.execute(
                    "INSERT INTO docs_fts(rowid, title, text) VALUES (?, ?, ?)",
                    (cursor.lastrowid, doc.title, doc.text),
                )
                if embedded is not None and cursor.lastrowid is not None:
                    chunks, vectors = embedded[position]
                    write_vectors(self._db, cursor.lastrowid, chunks, vectors)
                count += 1
        self._matrix = None
        return count

    def optimize(self) -> None:
        with self._lock, self._db:
            self._db.execute("INSERT INTO docs_fts(docs_fts) VALUES ('optimize')")

    def search(self, query: str, k: int = 5, mode: SearchMode = "auto") -> list[SearchHit]:
        """The ``k`` best documents for ``query``, best first.

        ``auto``: hybrid when the index has vectors and an embedder, else lexical.
        ``lexical``: BM25 only. ``semantic``: cosine similarity only. ``hybrid``: both rankings
        fused by reciprocal rank fusion (raises :class:`SearchIndexError` without vectors)."""
        k = max(1, k)
        if mode == "auto":
            mode = "hybrid" if self.semantic_ready else "lexical"
        if mode == "lexical":
            lexical = self._lexical(query, k)
            return self._hits(query, [(r, -rank) for r, rank in lexical], {})
        vector = self._vectors(query, max(k, CANDIDATES))
        starts = {rowid: start for rowid, _, start in vector}
        if mode == "semantic":
            return self._hits(query, [(r, score) for r, score, _ in vector[:k]], starts)
        lexical = self._lexical(query, max(k, CANDIDATES))
        fused = reciprocal_rank_fusion([r for r, _ in lexical], [r for r, _, _ in vector])
        return self._hits(query, fused[:k], starts)

    @property
    def semantic_ready(self) -> bool:
        """Whether queries can be embedded and compared with stored vectors."""
        return self.embedder is not None and self.embedding_model is not None

    def _lexical(self, query: str, n: int) -> list[tuple[int, float]]:
        """(rowid, FTS5 rank) of the ``n`` best BM25 matches (rank: lower is better)."""
        expression = match_expression(query)
        if expression is None:
            return []
        # Rank first (FTS5 optimises ORDER BY rank LIMIT), then load only the winners: carrying
        # text or snippets through the sort would cost them for every matching row.
        with self._lock:
            rows = self._db.execute(
                "SELECT rowid, rank FROM docs_fts WHERE docs_fts MATCH ? ORDER BY rank LIMIT ?",
                (expression, n),
            ).fetchall()
        return [(int(rowid), float(rank)) for rowid, rank in rows]

    def _vectors(self, query: str, n: int) -> list[tuple[int, float, int]]:
        if self.embedder is None or self.embedding_model is None:
            raise SearchIndexError(
                f"{self.path} has no vectors or no embedder: build it with an embedder "
                "(agentkit index build --semantic) and install agentkit-tools[semantic]"
            )
        if not query.strip():
            return []
        matrix = self._matrix
        if matrix is None:
            with self._lock:
                matrix = self._matrix = load_matrix(self._db, self.embedder.dim)
        vector = self.embedder.embed([query])[0]
        return matrix.top_documents(vector, n)

    def _hits(
        self, query: str, ranked: list[tuple[int, float]], starts: dict[int, int]
    ) -> list[SearchHit]:
        if not ranked:
            return []
        marks = ",".join("?" * len(ranked))
        with self._lock:
            rows = self._db.execute(
                f"SELECT rowid, id, title, text, url FROM docs WHERE rowid IN ({marks})",
                [rowid for rowid, _ in ranked],
            ).fetchall()
        by_rowid = {row[0]: row for row in rows}
        terms = query_terms(query)
        hits = []
        for rowid, score in ranked:
            _, doc_id, title, text, url = by_rowid[rowid]
            hits.append(
                SearchHit(
                    id=doc_id,
                    title=title,
                    url=url,
                    snippet=_snippet(text, terms, starts.get(rowid)),
                    score=score,
                )
            )
        return hits

    def get(self, doc_id: str) -> Document | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, title, text, url FROM docs WHERE id = ?", (doc_id,)
            ).fetchone()
        if row is None:
            return None
        return Document(id=row[0], title=row[1], text=row[2], url=row[3])

    async def asearch(self, query: str, k: int = 5, mode: SearchMode = "auto") -> list[SearchHit]:
        return await anyio.to_thread.run_sync(lambda: self.search(query, k, mode))

    async def aget(self, doc_id: str) -> Document | None:
        return await anyio.to_thread.run_sync(lambda: self.get(doc_id))


def _snippet(text: str, terms: list[str], chunk_start: int | None) -> str:
    """The lexical snippet when a query word occurs in the text; else, for a document found by
    meaning alone, the start of its best-matching chunk."""
    if chunk_start is None:
        return snippet(text, terms)
    stems = tuple(t[:5] if len(t) > 5 else t for t in terms)
    lowered = text.lower()
    if any(stem in lowered for stem in stems):
        return snippet(text, terms)
    words = text.split()
    window = " ".join(words[chunk_start : chunk_start + SNIPPET_WORDS])
    prefix = "… " if chunk_start else ""
    return prefix + window + (" …" if chunk_start + SNIPPET_WORDS < len(words) else "")
