"""Tasks: a customer instruction, the gold actions and the outputs the agent must say.

tau-bench ships tasks as Python (``tasks_test.py``); ``../shared/taubench`` has them converted to
JSON. Both load here: JSON files directly, Python files by reading their syntax tree (no code is
executed).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

RESPOND_ACTION = "respond"


class Action(BaseModel):  # type: ignore[no-redef]  # pydantic plugin vs a field named kwargs
    """One step of an episode: a tool call, or ``respond`` (the agent's words to the user)."""

    model_config = ConfigDict(frozen=True)

    name: str
    kwargs: dict[str, Any] = Field(default_factory=dict)


class Task(BaseModel):
    """A tau-bench task. ``outputs`` must each appear in something the agent told the user."""

    user_id: str = ""
    instruction: str
    actions: list[Action] = Field(default_factory=list)
    outputs: list[str] = Field(default_factory=list)
    annotator: str | int | None = None


def parse_range(spec: str, count: int) -> list[int]:
    """``"0-9"``, ``"3"``, ``"1,4,7-9"`` or ``"all"`` -> sorted task indices below ``count``."""
    if spec.strip().lower() in ("", "all"):
        return list(range(count))
    chosen: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            start_text, end_text = part.split("-", 1)
            start, end = int(start_text), int(end_text)
            if end < start:
                raise ValueError(f"bad task range {part!r}")
            chosen.update(range(start, end + 1))
        else:
            chosen.add(int(part))
    bad = sorted(i for i in chosen if not 0 <= i < count)
    if bad:
        raise ValueError(f"task indices {bad} out of range (0-{count - 1})")
    return sorted(chosen)


def load_tasks(path: Path) -> list[Task]:
    """Tasks from a JSON list (``tasks_test.json``) or a tau-bench ``tasks_*.py`` file."""
    if path.suffix == ".py":
        raw = _tasks_from_python(path.read_text(encoding="utf-8"))
    else:
        raw = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(raw, list):
        raise ValueError(f"{path}: expected a list of tasks")
    return [Task.model_validate(_normalise(item)) for item in raw]


def _normalise(item: Any) -> Any:
    if isinstance(item, dict) and "actions" in item:
        actions = []
        for action in item["actions"]:
            if isinstance(action, dict) and "kwargs" not in action and "arguments" in action:
                action = {"name": action["name"], "kwargs": action["arguments"]}
            actions.append(action)
        item = {**item, "actions": actions}
    return item


def _tasks_from_python(source: str) -> list[Any]:
    """The first list literal of ``Task(...)`` calls assigned at module level, as plain data."""
    tree = ast.parse(source)
    for node in tree.body:
        value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
        if isinstance(value, ast.List):
            converted = _literal(value)
            if isinstance(converted, list):
                return converted
    raise ValueError("no task list found in the Python file")


def _literal(node: ast.AST) -> Any:
    if isinstance(node, ast.Call):
        return {kw.arg: _literal(kw.value) for kw in node.keywords if kw.arg is not None}
    if isinstance(node, ast.List | ast.Tuple):
        return [_literal(elt) for elt in node.elts]
    if isinstance(node, ast.Dict):
        return {
            _literal(key): _literal(value)
            for key, value in zip(node.keys, node.values, strict=True)
            if key is not None
        }
    return ast.literal_eval(node)
