"""tau-bench's retail domain: orders, products and users of an online store."""

from __future__ import annotations

from pathlib import Path

from agentkit.envs.domain import Domain

from ..loading import load_tau_domain
from .specs import retail_specs

TABLES = ("orders", "products", "users")


def load(data_dir: str | Path, split: str = "test") -> Domain:
    return load_tau_domain("retail", Path(data_dir), TABLES, retail_specs(), split)


__all__ = ["TABLES", "load", "retail_specs"]
