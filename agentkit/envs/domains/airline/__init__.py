"""tau-bench's airline domain: flights, reservations and users of an airline."""

from __future__ import annotations

from pathlib import Path

from agentkit.envs.domain import Domain

from ..loading import load_tau_domain
from .specs import airline_specs

TABLES = ("flights", "reservations", "users")


def load(data_dir: str | Path, split: str = "test") -> Domain:
    return load_tau_domain("airline", Path(data_dir), TABLES, airline_specs(), split)


__all__ = ["TABLES", "airline_specs", "load"]
