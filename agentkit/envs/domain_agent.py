"""An agent for a domain, tau-bench's or tau2's: the domain's policy as instructions, its tools,
and its benchmark's per-turn tool call limit, the one place that limit is applied."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from agentkit.agent import Agent
from agentkit.models.base import Model
from agentkit.tool import Tool


class AgentDomain(Protocol):
    """What :func:`domain_agent` reads of a domain."""

    @property
    def name(self) -> str: ...
    @property
    def policy(self) -> str: ...
    @property
    def max_tool_calls_per_turn(self) -> int | None: ...
    def tools(self) -> Sequence[Tool]: ...


def domain_agent(
    domain: AgentDomain, benchmark: str, model: Model, options: dict[str, Any]
) -> Agent[Any, str]:
    """An :class:`~agentkit.agent.Agent` named ``<benchmark>-<domain>``; ``options`` are further
    ``Agent`` arguments and override the domain's."""
    settings: dict[str, Any] = {
        "instructions": domain.policy,
        "tools": domain.tools(),
        "max_tool_calls_per_turn": domain.max_tool_calls_per_turn,
        "name": f"{benchmark}-{domain.name}",
    }
    return Agent(model, **(settings | options))
