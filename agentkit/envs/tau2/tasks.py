"""tau2-bench's task files: the user scenario, the initial state and the evaluation criteria.

Only the fields agentkit uses are typed; everything else in a task is kept as it is.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from .toolkit import Requestor


class RewardType(StrEnum):
    DB = "DB"
    ENV_ASSERTION = "ENV_ASSERTION"
    ACTION = "ACTION"
    COMMUNICATE = "COMMUNICATE"
    NL_ASSERTION = "NL_ASSERTION"


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class GoldAction(_Loose):
    """A gold tool call; ``compare_args`` limits which arguments must match (None: all the
    predicted call's arguments)."""

    action_id: str = ""
    requestor: Requestor = "assistant"
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    compare_args: list[str] | None = None

    def matches(self, name: str, arguments: dict[str, Any]) -> bool:
        if self.name != name:
            return False
        keys = list(arguments) if self.compare_args is None else self.compare_args
        if not keys:
            return True
        theirs = {k: v for k, v in arguments.items() if k in keys}
        ours = {k: v for k, v in self.arguments.items() if k in keys}
        return theirs == ours


class EnvFunctionCall(_Loose):
    env_type: Requestor
    func_name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class EnvAssertion(EnvFunctionCall):
    assert_value: bool = True
    message: str | None = None


class InitializationData(_Loose):
    agent_data: dict[str, Any] | None = None
    user_data: dict[str, Any] | None = None


class InitialState(_Loose):
    initialization_data: InitializationData | None = None
    initialization_actions: list[EnvFunctionCall] | None = None
    message_history: list[dict[str, Any]] | None = None


class EvaluationCriteria(_Loose):
    actions: list[GoldAction] | None = None
    env_assertions: list[EnvAssertion] | None = None
    communicate_info: list[str] | None = None
    nl_assertions: list[str] | None = None
    reward_basis: list[RewardType] = Field(
        default_factory=lambda: [RewardType.DB, RewardType.COMMUNICATE]
    )


class UserScenario(_Loose):
    persona: str | None = None
    instructions: Any = None

    def text(self) -> str:
        """The scenario as the simulated user's instructions (tau2's ``str(user_scenario)``
        layout: persona, then each instruction field under its own heading)."""
        parts: list[str] = []
        if self.persona:
            parts.append(f"Persona:\n{self.persona.strip()}")
        instructions = self.instructions
        if isinstance(instructions, dict):
            lines = ["Instructions:"]
            for key in ("domain", "reason_for_call", "known_info", "unknown_info"):
                value = instructions.get(key)
                if value:
                    lines.append(f"\t{key.replace('_', ' ').title()}: {value}")
            extra = instructions.get("task_instructions")
            if extra:
                lines.append(f"\tTask Instructions: {extra}")
            parts.append("\n".join(lines))
        elif instructions:
            parts.append(f"Instructions:\n{instructions}")
        return "\n".join(parts)


class Tau2Task(_Loose):
    id: str
    user_scenario: UserScenario = Field(default_factory=UserScenario)
    ticket: str | None = None
    initial_state: InitialState | None = None
    evaluation_criteria: EvaluationCriteria | None = None

    @property
    def gold_actions(self) -> list[GoldAction]:
        criteria = self.evaluation_criteria
        return list(criteria.actions or []) if criteria else []


_TASKS = TypeAdapter(list[Tau2Task])


def load_tau2_tasks(path: Path) -> list[Tau2Task]:
    raw: Any = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(raw, dict) and "tasks" in raw:
        raw = raw["tasks"]
    return _TASKS.validate_python(raw)
