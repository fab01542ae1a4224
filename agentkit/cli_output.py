"""How every agentkit command line prints its errors without a terminal."""

from __future__ import annotations

import sys

import typer
import typer.core


def plain_errors_unless_terminal(*apps: typer.Typer) -> None:
    """Without a terminal on stderr (logs, pipes, CI, a test's subprocess), errors and help are
    click's plain text: an error is one line, not a rich box wrapped to whatever width the
    environment claims, and the tracebacks of ``apps`` are Python's own."""
    if not sys.stderr.isatty():
        typer.core.HAS_RICH = False  # what TYPER_USE_RICH=0 sets when typer is imported
        for app in apps:
            app.pretty_exceptions_enable = False
