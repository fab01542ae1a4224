"""The tools' JSON schemas match tau-bench's tools_schema.json."""

from __future__ import annotations

import importlib
import json
from typing import Any

import pytest

from agentkit.envs import load_domain
from tests.shared import shared_file


def _without_descriptions(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_descriptions(v) for k, v in value.items() if k != "description"}
    if isinstance(value, list):
        return [_without_descriptions(v) for v in value]
    return value


@pytest.mark.parametrize("name", ["retail", "airline"])
def test_own_schemas_have_tau_bench_structure(name: str) -> None:
    module = importlib.import_module(f"agentkit.envs.domains.{name}.tools")
    tools = getattr(module, f"{name.upper()}_TOOLS")
    theirs = json.loads(shared_file("taubench", name, "tools_schema.json").read_text())
    ours = [tool.schema() for tool in tools]
    # each tool is importable on its own, under its own name
    assert all(getattr(module, tool.name) is tool for tool in tools)
    assert [t["function"]["name"] for t in ours] == [t["function"]["name"] for t in theirs]
    assert _without_descriptions(ours) == _without_descriptions(theirs)
    assert all(t["function"]["description"] for t in ours)


@pytest.mark.parametrize("name", ["retail", "airline"])
def test_tools_schema_file_in_data_dir_gives_exact_text(name: str) -> None:
    theirs = json.loads(shared_file("taubench", name, "tools_schema.json").read_text())
    domain = load_domain(name, shared_file("taubench", name))
    assert [tool.schema() for tool in domain.tools()] == theirs
    assert domain.policy.startswith("#")
    assert domain.terminate_tools == {"transfer_to_human_agents"}
