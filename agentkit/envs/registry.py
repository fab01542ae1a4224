"""Domains by name: ``retail`` and ``airline`` (tau-bench's, from ``--data-dir``) and ``demo``."""

from __future__ import annotations

from pathlib import Path

from .domain import Domain

DOMAINS = ("retail", "airline", "demo")


def load_domain(name: str, data_dir: str | Path | None = None, split: str = "test") -> Domain:
    """Load a domain. ``retail``/``airline`` need tau-bench's data directory; ``demo`` generates
    its own data (``data_dir`` ignored)."""
    if name == "demo":
        from agentkit.tools.tau import demo

        return demo.load()
    if name not in DOMAINS:
        raise ValueError(f"unknown domain {name!r}; choose from {', '.join(DOMAINS)}")
    if data_dir is None:
        raise ValueError(f"domain {name!r} needs --data-dir (tau-bench's envs/{name}/data folder)")
    if name == "retail":
        from agentkit.tools.tau import retail

        return retail.load(data_dir, split)
    from agentkit.tools.tau import airline

    return airline.load(data_dir, split)
