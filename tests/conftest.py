from __future__ import annotations

import os
from collections.abc import Iterator

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


@pytest.fixture(autouse=True, scope="session")
def _cache_in_the_session_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """agentkit's disk caches (the embedded model's converted weights and prefix, the test
    tokenizer) go to this session's temporary folder, not to the user's ``~/.cache``; every
    process the tests start inherits it."""
    previous = os.environ.get("AGENTKIT_CACHE_DIR")
    os.environ["AGENTKIT_CACHE_DIR"] = str(tmp_path_factory.mktemp("agentkit-cache"))
    yield
    if previous is None:
        os.environ.pop("AGENTKIT_CACHE_DIR", None)
    else:
        os.environ["AGENTKIT_CACHE_DIR"] = previous
