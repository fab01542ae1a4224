"""Domains by name: ``retail`` and ``airline`` (tau-bench's, from ``--data-dir``) and ``demo``."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from .domain import Domain

DOMAINS = ("retail", "airline", "demo")


def load_domain(name: str, data_dir: str | Path | None = None, split: str = "test") -> Domain:
    """Load a domain. ``retail``/``airline`` need tau-bench's data directory; ``demo`` generates
    its own data (``data_dir`` ignored)."""
    if name not in DOMAINS:
        raise ValueError(f"unknown domain {name!r}; choose from {', '.join(DOMAINS)}")
    module = importlib.import_module(f"agentkit.tools.tau.{name}")
    if name == "demo":
        make_demo: Callable[[], Domain] = module.load
        return make_demo()
    if data_dir is None:
        raise ValueError(f"domain {name!r} needs --data-dir (tau-bench's envs/{name}/data folder)")
    loader: Callable[[str | Path, str], Domain] = module.load
    return loader(data_dir, split)
