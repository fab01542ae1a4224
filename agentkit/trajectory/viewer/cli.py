"""``agentkit view STORE``: browse a trajectory store in a local web page.

The main CLI adds ``view`` as a top-level command (``EXTRA_COMMANDS``);
``python -m agentkit.trajectory.viewer STORE`` runs it standalone.
"""

from __future__ import annotations

import webbrowser
from pathlib import Path
from typing import Annotated

import typer

from agentkit.cli_output import plain_errors_unless_terminal

EXTRA_COMMANDS = ("view",)


def view(
    store: Annotated[Path, typer.Argument(help="Trajectory store (.jsonl or .parquet).")],
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 picks a free one).")] = 8321,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    tokenizer: Annotated[
        Path | None,
        typer.Option(help="tokenizer.json or folder: show the token view as text, not ids."),
    ] = None,
    open_browser: Annotated[
        bool, typer.Option("--open/--no-open", help="Open the page in a browser.")
    ] = False,
) -> None:
    """Serve a page listing the store's episodes (filters: status, reward, task, group) and
    showing one as a timeline, with rewards, the failure cause and a loss-masked token view."""
    from .server import ViewerServer

    if not store.is_file():
        raise typer.BadParameter(f"no such store: {store}", param_hint="STORE")
    loaded = None
    if tokenizer is not None:
        from agentkit.tokenizer import load_tokenizer

        loaded = load_tokenizer(tokenizer)
    viewer = ViewerServer(store, host=host, port=port, tokenizer=loaded)
    typer.echo(f"{len(viewer.index)} episodes in {store}")
    typer.echo(f"viewer at {viewer.url} (Ctrl-C stops)")
    if open_browser:
        webbrowser.open(viewer.url)
    try:
        viewer.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        viewer.httpd.server_close()


def main() -> None:
    app = typer.Typer(add_completion=False)  # what typer.run(view) makes
    app.command()(view)
    plain_errors_unless_terminal(app)
    app()


if __name__ == "__main__":
    main()
