"""Retrieval quality of the embedded index: recall@5 and MRR, lexical (BM25) vs semantic vs
hybrid (BM25 + all-MiniLM-L6-v2 vectors, reciprocal rank fusion), on the labelled set in
``tests/data/search_eval`` (40 handbook documents; 32 queries that ask for them in other words
and 8 that name an exact term, a code or a number). Needs ``agentkit-tools[semantic]``. Run:

    nice python benchmarks/bench_search_quality.py [--k 5] [--misses]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from agentkit_tools.search import LocalIndex
from agentkit_tools.search.embeddings import MiniLMEmbedder
from agentkit_tools.search.evaluate import evaluate, read_queries

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "search_eval"


def main(k: int, misses: bool) -> None:
    queries = read_queries(DATA / "queries.jsonl")
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        (corpus / "corpus.jsonl").write_text((DATA / "corpus.jsonl").read_text())
        started = time.perf_counter()
        index, report = LocalIndex.build(
            corpus, Path(tmp) / "index.sqlite", embedder=MiniLMEmbedder()
        )
        print(
            f"{report.documents} documents indexed with vectors in {time.perf_counter() - started:.1f} s"
        )
        kinds = sorted({q.kind for q in queries})
        for kind in [*kinds, "all"]:
            subset = [q for q in queries if kind in ("all", q.kind)]
            print(f"-- {kind} ({len(subset)} queries)")
            for mode in ("lexical", "semantic", "hybrid"):
                started = time.perf_counter()
                result = evaluate(index, subset, k=k, mode=mode)
                took = (time.perf_counter() - started) / len(subset) * 1000
                print(
                    f"{mode:<9} recall@{k} {result.recall:.3f}  MRR {result.mrr:.3f}  "
                    f"({took:.0f} ms/query)"
                )
                if misses and kind != "all":
                    for miss in result.misses:
                        print(f"    miss: {miss.query!r} -> {miss.found}")
        index.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--misses", action="store_true")
    args = parser.parse_args()
    main(args.k, args.misses)
