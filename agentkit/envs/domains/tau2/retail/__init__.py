"""tau2's retail domain (single control: only the agent has tools)."""

from __future__ import annotations

from pathlib import Path

from agentkit.envs.tau2.domain import Tau2Domain

from ..loading import load_json_domain
from .models import RetailDB
from .tools import RetailTools


def load(data_dir: str | Path) -> Tau2Domain:
    return load_json_domain("retail", data_dir, RetailDB, RetailTools)


__all__ = ["RetailDB", "RetailTools", "load"]
