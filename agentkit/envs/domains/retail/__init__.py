"""tau-bench's retail domain: orders, products and users of an online store."""

from __future__ import annotations

from pathlib import Path

from agentkit.envs.domain import Domain

from ..loading import load_tau_domain
from .tools import RETAIL_TOOLS

TABLES = ("orders", "products", "users")


def load(data_dir: str | Path, split: str = "test") -> Domain:
    return load_tau_domain("retail", Path(data_dir), TABLES, RETAIL_TOOLS, split)


__all__ = ["RETAIL_TOOLS", "TABLES", "load"]
