"""Retrieval quality of the local index on a labelled set: recall@k per search mode.

A labelled set is a corpus (JSONL documents) and queries, each with the ids of the documents
that answer it. ``recall@k`` is the share of a query's relevant documents found in its top
``k``, averaged over queries; ``mrr`` the mean reciprocal rank of the first relevant one.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from .index import LocalIndex, SearchMode


class LabelledQuery(BaseModel):
    query: str
    relevant: list[str]
    kind: str = ""  # e.g. "paraphrase" (other words) or "keyword" (a name, code or number)


class QueryResult(BaseModel):
    query: str
    relevant: list[str]
    found: list[str]
    recall: float
    reciprocal_rank: float


class ModeReport(BaseModel):
    mode: str
    k: int
    recall: float
    mrr: float
    queries: list[QueryResult]

    @property
    def misses(self) -> list[QueryResult]:
        return [q for q in self.queries if q.recall < 1.0]


def read_queries(path: str | Path) -> list[LabelledQuery]:
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [LabelledQuery.model_validate(json.loads(line)) for line in lines if line.strip()]


def evaluate(
    index: LocalIndex, queries: list[LabelledQuery], *, k: int = 5, mode: SearchMode = "auto"
) -> ModeReport:
    results = []
    for item in queries:
        found = [hit.id for hit in index.search(item.query, k, mode)]
        relevant = set(item.relevant)
        hits = [i for i, doc_id in enumerate(found) if doc_id in relevant]
        results.append(
            QueryResult(
                query=item.query,
                relevant=item.relevant,
                found=found,
                recall=len({found[i] for i in hits}) / len(relevant) if relevant else 1.0,
                reciprocal_rank=1.0 / (hits[0] + 1) if hits else 0.0,
            )
        )
    count = max(len(results), 1)
    return ModeReport(
        mode=mode,
        k=k,
        recall=sum(r.recall for r in results) / count,
        mrr=sum(r.reciprocal_rank for r in results) / count,
        queries=results,
    )
