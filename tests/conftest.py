from __future__ import annotations

import pytest
import typer.core
from hypothesis import settings

# No per-example deadline: a deadline is a timing assertion, and this suite runs on loaded
# shared machines (speed is measured in benchmarks/, never asserted in tests).
settings.register_profile("agentkit", deadline=None)
settings.load_profile("agentkit")

# pytester: tests/testing/test_pytest_plugin.py runs user test files; tests.sandbox_support: the
# Docker fixtures (engine, sandbox, no_leaks) every layer that drives a sandbox uses;
# tests.browser_support: the Chromium tests' page servers and module-scoped browser pool;
# tests.loop.run_support: SGLang test servers started for one test, the test tokenizer.
pytest_plugins = [
    "pytester",
    "tests.sandbox_support",
    "tests.browser_support",
    "tests.loop.run_support",
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _plain_cli_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """CLI errors as click prints them without a terminal: one line, no rich box wrapped to the
    terminal's width (``agentkit`` does the same when stderr is not a TTY), so no test depends
    on ``COLUMNS`` or the terminal it runs in."""
    monkeypatch.setattr(typer.core, "HAS_RICH", False)
