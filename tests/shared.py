"""Locate ../shared (research data beside the checkout); skip tests cleanly where it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """The shared/ folder next to this checkout (or $AGENTKIT_SHARED_DIR); skips if missing."""
    candidate = Path(os.environ.get("AGENTKIT_SHARED_DIR", REPO_ROOT.parent / "shared"))
    if not candidate.is_dir():
        pytest.skip(
            f"shared data not found at {candidate} (a fresh clone has none; set AGENTKIT_SHARED_DIR)"
        )
    return candidate


def shared_file(*parts: str) -> Path:
    """A file of the shared data; skips naming the file where it (or the folder) is missing."""
    candidate = Path(os.environ.get("AGENTKIT_SHARED_DIR", REPO_ROOT.parent / "shared"))
    if not candidate.is_dir():
        pytest.skip(
            f"needs {candidate.joinpath(*parts)}: no shared data at {candidate} "
            "(a fresh clone has none; set AGENTKIT_SHARED_DIR)"
        )
    path = candidate.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent from the shared data")
    return path
