"""tau2's airline domain (single control). Note: the shared ``db.json`` is a reconstruction
of tau2's file, so its hashes are consistent with that file only (see its README)."""

from __future__ import annotations

from pathlib import Path

from agentkit.envs.tau2.domain import Tau2Domain

from ..loading import load_json_domain
from .models import FlightDB
from .tools import AirlineTools


def load(data_dir: str | Path) -> Tau2Domain:
    return load_json_domain("airline", data_dir, FlightDB, AirlineTools)


__all__ = ["AirlineTools", "FlightDB", "load"]
