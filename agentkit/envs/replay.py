"""Replay a list of actions through a domain's tools, without any model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter

from agentkit.tool import RunContext

from .domain import Domain, EpisodeState
from .tasks import Action

_ACTIONS = TypeAdapter(list[Action])


class ReplayResult(BaseModel):
    observations: list[str]
    db_hash: str


def load_actions(path: Path) -> list[Action]:
    """A JSON list of ``{"name": ..., "kwargs": {...}}`` (``arguments`` accepted for ``kwargs``)."""
    raw: Any = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(raw, list):
        raise ValueError(f"{path}: expected a JSON list of actions")
    fixed = [
        {"name": a.get("name"), "kwargs": a.get("kwargs", a.get("arguments", {}))}
        if isinstance(a, dict)
        else a
        for a in raw
    ]
    return _ACTIONS.validate_python(fixed)


async def replay(
    domain: Domain, actions: list[Action], state: EpisodeState | None = None
) -> ReplayResult:
    """Call each action through the domain's agentkit tools on a fresh database, in order; every
    action gives one observation (an unknown name gives ``Unknown action <name>``). Pass
    ``state`` to replay onto an existing episode instead."""
    state = state if state is not None else domain.new_episode()
    tools = {tool.name: tool for tool in domain.tools()}
    observations: list[str] = []
    for index, action in enumerate(actions):
        tool = tools.get(action.name)
        if tool is None:
            observations.append(state.step(action.name, action.kwargs))
            continue
        ctx = RunContext(deps=state, run_id="replay", turn=index, call_id=f"replay-{index}")
        outcome = await tool.call(action.kwargs, ctx)
        observations.append(outcome.output)
    return ReplayResult(observations=observations, db_hash=state.db_hash())
