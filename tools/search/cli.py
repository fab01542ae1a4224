"""``agentkit index``: build and query the embedded search index from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .index import LocalIndex, SearchIndexError
from .tools import render_hits

DEFAULT_INDEX = Path("agentkit-index.sqlite")

app = typer.Typer(help="Build and query a local search index.", no_args_is_help=True)


@app.command()
def build(
    folder: Annotated[Path, typer.Argument(help="Folder of .txt/.md/.rst/.html/.jsonl files.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Index file to write.")] = DEFAULT_INDEX,
) -> None:
    """Index every document under FOLDER into one SQLite file (replacing its content)."""
    try:
        index, report = LocalIndex.build(folder, out)
    except SearchIndexError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    index.close()
    for problem in report.problems:
        typer.echo(f"skipped {problem.path}: {problem.reason}", err=True)
    typer.echo(
        f"indexed {report.documents} documents into {out} in {report.seconds:.2f} s "
        f"({report.docs_per_second:.0f} docs/s)"
    )


@app.command()
def query(
    text: Annotated[str, typer.Argument(help="The query.")],
    index_path: Annotated[Path, typer.Option("--index", "-i", help="Index file.")] = DEFAULT_INDEX,
    k: Annotated[int, typer.Option("-k", help="Number of results.")] = 5,
) -> None:
    """Search an index built with ``build``."""
    try:
        index = LocalIndex.open(index_path)
    except SearchIndexError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(render_hits(text, index.search(text, k)))
    index.close()
