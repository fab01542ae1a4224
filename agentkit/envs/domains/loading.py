"""Build a tau-bench domain from a data directory.

Two layouts are accepted: a flat folder (``users.json``, ``orders.json``, ..., ``wiki.md``,
``tasks_test.json``; the layout of ``../shared/taubench/retail``), and tau-bench's own checkout,
where ``--data-dir`` is ``tau_bench/envs/retail/data`` and the policy and ``tasks_*.py`` sit one
folder up. If a ``tools_schema.json`` is present, its descriptions (tau-bench's exact text) are
shown to the model instead of this project's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentkit.envs.domain import Domain, DomainTool, LoadedData
from agentkit.envs.tasks import Task, load_tasks
from agentkit.toolset import Toolset


class DataDirError(ValueError):
    """The data directory lacks a file the domain needs."""


def _find(data_dir: Path, names: Sequence[str]) -> Path | None:
    for folder in (data_dir, data_dir.parent):
        for name in names:
            if (folder / name).is_file():
                return folder / name
    return None


def find_tasks_file(data_dir: Path, split: str) -> Path | None:
    return _find(data_dir, [f"tasks_{split}.json", f"tasks_{split}.py"])


def with_schema_text(tools: Toolset, schema_file: Path) -> Toolset:
    """The tools with the descriptions and schemas of a tau-bench ``tools_schema.json`` (same
    names only)."""
    given: dict[str, Any] = {
        item["function"]["name"]: item["function"]
        for item in json.loads(schema_file.read_text(encoding="utf-8"))
    }
    return Toolset(
        item.with_text(given[item.name]["description"], given[item.name]["parameters"])
        if item.name in given and isinstance(item, DomainTool)
        else item
        for item in tools
    )


def load_tau_domain(
    name: str,
    data_dir: Path,
    tables: Sequence[str],
    tools: Toolset,
    split: str = "test",
) -> Domain:
    data_dir = Path(data_dir).expanduser()
    if not data_dir.is_dir():
        raise DataDirError(f"{name}: data directory {data_dir} does not exist")
    missing = [t for t in tables if not (data_dir / f"{t}.json").is_file()]
    if missing:
        raise DataDirError(
            f"{name}: {data_dir} lacks {', '.join(t + '.json' for t in missing)} "
            "(point --data-dir at tau-bench's tau_bench/envs/{name}/data)"
        )
    data = LoadedData({t: data_dir / f"{t}.json" for t in tables})
    wiki = _find(data_dir, ["wiki.md"])
    policy = wiki.read_text(encoding="utf-8") if wiki else ""
    schema_file = _find(data_dir, ["tools_schema.json"])
    if schema_file is not None:
        tools = with_schema_text(tools, schema_file)
    tasks_file = find_tasks_file(data_dir, split)
    tasks: list[Task] = load_tasks(tasks_file) if tasks_file else []
    return Domain(name=name, policy=policy, toolset=tools, data=data, tasks=tasks)
