"""The import graph holds the layers of docs/architecture.md and has no cycles.

Every import of every module is read with ``ast``: at module level, under ``if TYPE_CHECKING:``
and inside functions. ``tools/agentkit_tools/`` is the package ``agentkit_tools`` and
``sandboxes/agentkit_sandboxes/`` is ``agentkit_sandboxes`` (the workspace's other two
distributions; ``tests/project/test_install_check.py`` holds which of them may import which). The layers, bottom to top, and what each may import:

- ``base``: messages, dialects, tokenizer, gc_tuning: only ``base``.
- ``records``: ``trajectory.records``, ``trajectory.packed``, ``trajectory.recorder`` (what a
  run writes, and the protocol it is written to): ``base``.
- ``models``: ``agentkit.models.*``: ``base``, ``records``.
- ``loop``: agent, agent_base, conversation*, tool, tool_turn, events, result, hooks, ...:
  ``base``, ``records``, ``models``.
- ``trajectory``: the rest of ``agentkit.trajectory`` (store, rows, exports, ...), an observer
  of the loop: ``base``, ``records`` only; it never imports models or the loop, and the loop
  never imports it (it writes to a ``Recorder``).
- ``top``: tools, sandboxes, envs, rollout*, serve, testing, tracing, integrations, the CLIs
  (``cli``, ``trajectory.cli``, ``trajectory.viewer``) and the ``agentkit`` facade: anything.

A module importing ``a.b.c`` depends on ``a.b.c`` only (the parent packages it runs on the way
are not counted: ``agentkit/__init__.py`` is the public facade and imports everything).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = {
    "agentkit": "agentkit",
    "tools/agentkit_tools": "agentkit_tools",
    "sandboxes/agentkit_sandboxes": "agentkit_sandboxes",
}

BASE = (
    "agentkit.messages",
    "agentkit.tokenizer",
    "agentkit.gc_tuning",
    "agentkit.dialects",
    "agentkit.closing",
    "agentkit.lazy_names",
)
RECORDS = (
    "agentkit.trajectory.records",
    "agentkit.trajectory.packed",
    "agentkit.trajectory.recorder",
)
LOOP = tuple(
    f"agentkit.{name}"
    for name in [
        "agent",
        "agent_base",
        "agent_config",
        "approvals",
        "conversation",
        "conversation_pause",
        "conversation_tools",
        "events",
        "final_answer",
        "hooks",
        "pricing",
        "result",
        "run_state",
        "run_stream",
        "step_records",
        "sync_tools",
        "worker_threads",
        "tool",
        "tool_turn",
    ]
)
TRAJECTORY_TOP = ("agentkit.trajectory.cli", "agentkit.trajectory.viewer")
MAY_IMPORT = {
    "base": {"base"},
    "records": {"base", "records"},
    "models": {"base", "records", "models"},
    "loop": {"base", "records", "models", "loop"},
    "trajectory": {"base", "records", "trajectory"},
    "top": {"base", "records", "models", "loop", "trajectory", "top"},
}

# Import edges left in place, each with why. Every entry must still exist (else remove it).
ALLOWED_EDGES = {
    # issue #13: rollout_rewards names RolloutTask (type-only) and rollout_episode imports
    # rollout_rewards at module level; rollout_episode is another helper's file, left to it.
    ("agentkit.rollout_rewards", "agentkit.rollout_episode"): "type-only (TYPE_CHECKING)",
}


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def layer(module: str) -> str:
    if _within(module, RECORDS):
        return "records"
    if _within(module, BASE):
        return "base"
    if _within(module, ("agentkit.models",)):
        return "models"
    if _within(module, LOOP):
        return "loop"
    if _within(module, ("agentkit.trajectory",)) and not _within(module, TRAJECTORY_TOP):
        return "trajectory"
    return "top"


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    is_package: bool


@cache
def modules() -> dict[str, Module]:
    found: dict[str, Module] = {}
    for folder, prefix in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts = parts[:-1]
            name = ".".join([prefix, *parts])
            found[name] = Module(name, path, is_package)
    return found


def _imported_names(module: Module) -> Iterator[str]:
    """Every dotted name ``module`` imports (``from a import b`` gives ``a.b``: the module
    ``a.b`` if there is one, else the names of ``a``)."""
    package = module.name if module.is_package else module.name.rpartition(".")[0]
    for node in ast.walk(ast.parse(module.path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            yield from (f"{base}.{alias.name}" for alias in node.names)


@cache
def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (the longest known prefix of each name)."""
    known = modules()

    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module in known.values():
        targets: set[str] = set()
        for name in _imported_names(module):
            if name == "agentkit" or name.startswith("agentkit."):
                target = resolve(name)
                if target is not None and target != module.name:
                    targets.add(target)
        graph[module.name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _without_allowed(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    return {m: {t for t in ts if (m, t) not in ALLOWED_EDGES} for m, ts in graph.items()}


def test_the_graph_sees_imports_at_every_level() -> None:
    graph = import_graph()
    # module level, inside a function, under TYPE_CHECKING, relative, and the folder mapping
    assert "agentkit.conversation" in graph["agentkit.agent"]
    assert "agentkit.trajectory.parquet" in graph["agentkit.trajectory.store"]
    assert "agentkit.models.embedded_plan" in graph["agentkit.models.embedded_chat"]
    assert "agentkit.agent_base" in graph["agentkit.conversation"]
    assert "agentkit.models.grammar_base" in graph["agentkit.models.grammar_arithmetic"]
    assert any(name.startswith("agentkit_tools.") for name in graph)
    assert any(name.startswith("agentkit_sandboxes.") for name in graph)


def test_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    found = cycles(_without_allowed(import_graph()))
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_allowed_edges_still_exist() -> None:
    graph = import_graph()
    stale = [edge for edge in ALLOWED_EDGES if edge[1] not in graph.get(edge[0], set())]
    assert not stale, f"remove from ALLOWED_EDGES, the import is gone: {stale}"


@pytest.mark.parametrize("name", ["base", "records", "models", "loop", "trajectory"])
def test_every_lower_layer_has_modules(name: str) -> None:
    assert any(layer(m) == name for m in import_graph())


def test_no_upward_imports() -> None:
    upward = [
        f"{m} ({layer(m)}) imports {t} ({layer(t)})"
        for m, targets in sorted(import_graph().items())
        for t in sorted(targets)
        if layer(t) not in MAY_IMPORT[layer(m)]
    ]
    assert not upward, "imports against the layers:\n" + "\n".join(upward)
