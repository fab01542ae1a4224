"""Shared loading for tau2's single-control domains (a ``db.json``, ``policy.md``,
``tasks.json`` and ``tools_schema.json`` in one folder)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from agentkit.envs.tau2.domain import Tau2Domain, read_schemas
from agentkit.envs.tau2.environment import Tau2Environment
from agentkit.envs.tau2.tasks import load_tau2_tasks
from agentkit.envs.tau2.toolkit import Toolkit


class Tau2DataError(ValueError):
    """The data folder lacks a file the domain needs."""


def require(folder: Path, *names: str) -> None:
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise Tau2DataError(f"{folder} lacks {', '.join(missing)} (tau2's data/tau2/domains/<d>)")


def load_json_domain(
    name: str,
    data_dir: str | Path,
    db_model: type[BaseModel],
    toolkit: Callable[[Any], Toolkit],
) -> Tau2Domain:
    folder = Path(data_dir).expanduser()
    require(folder, "db.json", "policy.md", "tools_schema.json")
    text = (folder / "db.json").read_text(encoding="utf-8")

    def make_env() -> Tau2Environment:
        return Tau2Environment(toolkit(db_model.model_validate_json(text)))

    tasks_file = folder / "tasks.json"
    return Tau2Domain(
        name=name,
        policy=(folder / "policy.md").read_text(encoding="utf-8"),
        make_env=make_env,
        tasks=load_tau2_tasks(tasks_file) if tasks_file.is_file() else [],
        agent_schemas=read_schemas(folder / "tools_schema.json"),
    )
