"""The embedded search index: SQLite FTS5 with BM25 ranking, in one file.

Why FTS5: it ships with Python (no dependency), stores the text beside the index (so ``get`` needs
nothing else), makes snippets, and answers in well under a millisecond for thousands of
documents; see ``benchmarks/README.md`` for the measured comparison with tantivy and bm25s.

Queries are plain words (any may match; BM25 ranks documents with more and rarer matches first,
titles weigh more than bodies), with ``"quoted phrases"`` kept together. Porter stemming makes
``indexing`` match ``indexed``.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import anyio.to_thread
from pydantic import BaseModel

from .documents import Document, DocumentProblem, SearchHit, read_folder

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

    def __init__(self, path: str | Path = ":memory:", *, create: bool = True) -> None:
        self.path = str(path)
        if self.path != ":memory:" and not create and not Path(self.path).exists():
            raise SearchIndexError(
                f"no index at {self.path}; build one with: agentkit index build DIR"
            )
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._lock = threading.Lock()
        try:
            with self._lock, self._db:
                self._db.executescript(_SCHEMA)
                self._db.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
                # Titles weigh more than bodies in the BM25 ranking (kept in the index's config).
                self._db.execute(
                    "INSERT INTO docs_fts(docs_fts, rank) VALUES ('rank', ?)",
                    (f"bm25({TITLE_WEIGHT}, 1.0)",),
                )
            version = self._db.execute(
                "SELECT value FROM meta WHERE key='schema_version'"
            ).fetchone()
        except sqlite3.DatabaseError as exc:
            raise SearchIndexError(f"{self.path} is not a usable index: {exc}") from exc
        if version is None or int(version[0]) != SCHEMA_VERSION:
            raise SearchIndexError(f"{self.path} has index version {version}, not {SCHEMA_VERSION}")

    @classmethod
    def open(cls, path: str | Path) -> LocalIndex:
        """An existing index; raises :class:`SearchIndexError` when there is none."""
        return cls(path, create=False)

    @classmethod
    def build(
        cls, folder: str | Path, path: str | Path = ":memory:"
    ) -> tuple[LocalIndex, BuildReport]:
        """Index every readable document under ``folder`` (replacing what ``path`` held)."""
        root = Path(folder)
        if not root.is_dir():
            raise SearchIndexError(f"{root} is not a folder")
        started = time.perf_counter()
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        index = cls(path)
        index.clear()
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

    def add(self, documents: Iterable[Document]) -> int:
        """Add or replace documents (by id); returns how many were written."""
        count = 0
        with self._lock, self._db:
            for doc in documents:
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
                cursor = self._db.execute(
                    "INSERT INTO docs(id, title, text, url) VALUES (?, ?, ?, ?)",
                    (doc.id, doc.title, doc.text, doc.url),
                )
                self._db.execute(
                    "INSERT INTO docs_fts(rowid, title, text) VALUES (?, ?, ?)",
                    (cursor.lastrowid, doc.title, doc.text),
                )
                count += 1
        return count

    def optimize(self) -> None:
        with self._lock, self._db:
            self._db.execute("INSERT INTO docs_fts(docs_fts) VALUES ('optimize')")

    def search(self, query: str, k: int = 5) -> list[SearchHit]:
        """The ``k`` best documents for ``query``, best first."""
        expression = match_expression(query)
        if expression is None:
            return []
        # Rank first (FTS5 optimises ORDER BY rank LIMIT), then load only the winners: carrying
        # text or snippets through the sort would cost them for every matching row.
        with self._lock:
            top = self._db.execute(
                "SELECT rowid, rank FROM docs_fts WHERE docs_fts MATCH ? ORDER BY rank LIMIT ?",
                (expression, max(1, k)),
            ).fetchall()
            marks = ",".join("?" * len(top))
            rows = self._db.execute(
                f"SELECT rowid, id, title, text, url FROM docs WHERE rowid IN ({marks})",
                [rowid for rowid, _ in top],
            ).fetchall()
        by_rowid = {row[0]: row for row in rows}
        terms = query_terms(query)
        hits = []
        for rowid, rank in top:
            _, doc_id, title, text, url = by_rowid[rowid]
            hits.append(
                SearchHit(
                    id=doc_id, title=title, url=url, snippet=snippet(text, terms), score=-rank
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

    async def asearch(self, query: str, k: int = 5) -> list[SearchHit]:
        return await anyio.to_thread.run_sync(lambda: self.search(query, k))

    async def aget(self, doc_id: str) -> Document | None:
        return await anyio.to_thread.run_sync(lambda: self.get(doc_id))
