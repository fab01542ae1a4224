"""Domains by name: ``retail`` and ``airline`` (tau-bench's, from ``--data-dir``) and ``demo``;
for ``--benchmark tau2``: ``telecom``, ``retail`` and ``airline`` from tau2's data folders."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .domain import Domain

if TYPE_CHECKING:
    from .tau2.domain import Tau2Domain

DOMAINS = ("retail", "airline", "demo")
TAU2_DOMAINS = ("telecom", "retail", "airline")
BENCHMARKS = ("tau", "tau2")


def load_domain(name: str, data_dir: str | Path | None = None, split: str = "test") -> Domain:
    """Load a domain. ``retail``/``airline`` need tau-bench's data directory; ``demo`` generates
    its own data (``data_dir`` ignored)."""
    if name not in DOMAINS:
        raise ValueError(f"unknown domain {name!r}; choose from {', '.join(DOMAINS)}")
    module = importlib.import_module(f"agentkit.envs.domains.{name}")
    if name == "demo":
        make_demo: Callable[[], Domain] = module.load
        return make_demo()
    if data_dir is None:
        raise ValueError(f"domain {name!r} needs --data-dir (tau-bench's envs/{name}/data folder)")
    loader: Callable[[str | Path, str], Domain] = module.load
    return loader(data_dir, split)


def load_tau2_domain(name: str, data_dir: str | Path | None) -> Tau2Domain:
    """A tau2 domain from tau2's data folder for it (``data/tau2/domains/<name>``, or
    ``../shared/tau2/<name>``)."""
    if name not in TAU2_DOMAINS:
        raise ValueError(f"unknown tau2 domain {name!r}; choose from {', '.join(TAU2_DOMAINS)}")
    if data_dir is None:
        raise ValueError(f"tau2 domain {name!r} needs --data-dir (tau2's domains/{name} folder)")
    folder = Path(data_dir).expanduser()
    if not folder.is_dir():
        raise ValueError(f"tau2 {name}: data directory {folder} does not exist")
    module = importlib.import_module(f"agentkit.envs.domains.tau2.{name}")
    loader: Callable[[str | Path], Tau2Domain] = module.load
    return loader(folder)
