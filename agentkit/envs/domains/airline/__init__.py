"""tau-bench's airline domain: flights, reservations and users of an airline."""

from __future__ import annotations

from pathlib import Path

from agentkit.envs.domain import Domain

from ..loading import load_tau_domain
from .tools import AIRLINE_TOOLS

TABLES = ("flights", "reservations", "users")


def load(data_dir: str | Path, split: str = "test") -> Domain:
    return load_tau_domain("airline", Path(data_dir), TABLES, AIRLINE_TOOLS, split)


__all__ = ["AIRLINE_TOOLS", "TABLES", "load"]
