"""``agentkit index``: build and query the embedded search index from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, cast

import typer

from .embeddings import EmbeddingUnavailable, MiniLMEmbedder
from .index import LocalIndex, SearchIndexError, SearchMode
from .tools import render_hits

DEFAULT_INDEX = Path("agentkit-index.sqlite")
MODES = ("auto", "lexical", "semantic", "hybrid")

app = typer.Typer(help="Build and query a local search index.", no_args_is_help=True)


@app.command()
def build(
    folder: Annotated[Path, typer.Argument(help="Folder of .txt/.md/.rst/.html/.jsonl files.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Index file to write.")] = DEFAULT_INDEX,
    semantic: Annotated[
        bool,
        typer.Option(
            "--semantic/--lexical",
            help="Also store embeddings for semantic search (needs agentkit-tools[semantic]).",
        ),
    ] = False,
) -> None:
    """Index every document under FOLDER into one SQLite file (replacing its content)."""
    try:
        embedder = MiniLMEmbedder() if semantic else None
        index, report = LocalIndex.build(folder, out, embedder=embedder)
    except EmbeddingUnavailable as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    except SearchIndexError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    index.close()
    for problem in report.problems:
        typer.echo(f"skipped {problem.path}: {problem.reason}", err=True)
    typer.echo(
        f"indexed {report.documents} documents into {out} in {report.seconds:.2f} s "
        f"({report.docs_per_second:.0f} docs/s{', with vectors' if semantic else ''})"
    )


@app.command()
def query(
    text: Annotated[str, typer.Argument(help="The query.")],
    index_path: Annotated[Path, typer.Option("--index", "-i", help="Index file.")] = DEFAULT_INDEX,
    k: Annotated[int, typer.Option("-k", help="Number of results.")] = 5,
    mode: Annotated[
        str, typer.Option(help="auto | lexical | semantic | hybrid (auto: hybrid with vectors).")
    ] = "auto",
) -> None:
    """Search an index built with ``build``."""
    if mode not in MODES:
        raise typer.BadParameter(f"mode must be one of {', '.join(MODES)}", param_hint="--mode")
    try:
        index = LocalIndex.open(index_path, semantic=None if mode in ("auto", "lexical") else True)
        hits = index.search(text, k, cast(SearchMode, mode))
    except (SearchIndexError, EmbeddingUnavailable) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(render_hits(text, hits))
    index.close()
