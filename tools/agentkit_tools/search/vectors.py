"""Vectors for the local index: document chunks embedded, stored beside the text in the same
SQLite file, searched by cosine similarity and fused with BM25 by reciprocal rank fusion.

Each document is cut into chunks of about :data:`CHUNK_WORDS` words (the title in front of
each); a document's vector score is its best chunk's. Vectors live in a ``vectors`` table
(float32 blobs) and are held in memory as one matrix for searching, rebuilt after writes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .documents import Document
from .embeddings import Embedder

CHUNK_WORDS = 120
CHUNK_OVERLAP = 20
RRF_K = 60
VECTOR_SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors(
    rowid INTEGER NOT NULL, chunk INTEGER NOT NULL, start_word INTEGER NOT NULL,
    vec BLOB NOT NULL, PRIMARY KEY(rowid, chunk)
);
"""


@dataclass(frozen=True)
class Chunk:
    index: int
    start_word: int
    text: str


def chunk_document(doc: Document) -> list[Chunk]:
    """The chunks embedded for ``doc``: overlapping word windows, each led by the title."""
    words = doc.text.split()
    step = CHUNK_WORDS - CHUNK_OVERLAP
    starts = list(range(0, max(len(words) - CHUNK_OVERLAP, 1), step)) or [0]
    return [
        Chunk(i, start, f"{doc.title}\n{' '.join(words[start : start + CHUNK_WORDS])}".strip())
        for i, start in enumerate(starts)
    ]


@dataclass
class VectorMatrix:
    """All chunk vectors in memory: ``rowids[i]`` and ``starts[i]`` describe row ``i``."""

    rowids: Any
    starts: Any
    matrix: Any

    def top_documents(self, query: Any, n: int) -> list[tuple[int, float, int]]:
        """(doc rowid, best cosine, start word of the best chunk), best first, at most ``n``."""
        import numpy as np

        if len(self.rowids) == 0:
            return []
        scores = self.matrix @ query
        order = np.argsort(-scores, kind="stable")
        best: dict[int, tuple[float, int]] = {}
        for i in order:
            rowid = int(self.rowids[i])
            if rowid not in best:
                best[rowid] = (float(scores[i]), int(self.starts[i]))
                if len(best) == n:
                    break
        return [(rowid, score, start) for rowid, (score, start) in best.items()]


def write_vectors(
    db: sqlite3.Connection, rowid: int, chunks: Sequence[Chunk], vectors: Any
) -> None:
    import numpy as np

    db.execute("DELETE FROM vectors WHERE rowid = ?", (rowid,))
    db.executemany(
        "INSERT INTO vectors(rowid, chunk, start_word, vec) VALUES (?, ?, ?, ?)",
        [
            (rowid, chunk.index, chunk.start_word, np.asarray(vec, dtype=np.float32).tobytes())
            for chunk, vec in zip(chunks, vectors, strict=True)
        ],
    )


def load_matrix(db: sqlite3.Connection, dim: int) -> VectorMatrix:
    import numpy as np

    rows = db.execute("SELECT rowid, start_word, vec FROM vectors ORDER BY rowid, chunk").fetchall()
    matrix = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32).reshape(len(rows), dim)
    return VectorMatrix(
        rowids=np.array([r[0] for r in rows], dtype=np.int64),
        starts=np.array([r[1] for r in rows], dtype=np.int64),
        matrix=matrix,
    )


def embed_documents(embedder: Embedder, docs: Sequence[Document]) -> list[tuple[list[Chunk], Any]]:
    """Each document's chunks and their vectors, embedding all chunks in batches."""
    chunked = [chunk_document(doc) for doc in docs]
    flat = [chunk.text for chunks in chunked for chunk in chunks]
    vectors = embedder.embed(flat)
    out: list[tuple[list[Chunk], Any]] = []
    at = 0
    for chunks in chunked:
        out.append((chunks, vectors[at : at + len(chunks)]))
        at += len(chunks)
    return out


def reciprocal_rank_fusion(*rankings: Sequence[int], k: int = RRF_K) -> list[tuple[int, float]]:
    """Fuse ranked lists of ids: score(d) = sum of 1 / (k + rank), rank from 1; best first."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])
