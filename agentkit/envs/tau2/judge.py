"""Natural-language assertions, judged by a model (tau2's NL_ASSERTION component).

The judge reads the conversation (the user's and the agent's messages) and, for each assertion,
answers whether the agent's behaviour satisfies it. Verdicts are recorded in the reward. Any
agentkit model can judge; with no judge the component is left out of the reward and reported as
not evaluated.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from agentkit.agent import Agent
from agentkit.models.base import Model
from agentkit.trajectory.records import EpisodeStatus

from .domain import Tau2Episode
from .evaluation import NLVerdict
from .tasks import Tau2Task

JUDGE_PROMPT = """You grade a customer-support conversation. For each numbered expectation about
the agent's behaviour, decide from the conversation alone whether it is met.
Answer with JSON only: {"results": [{"expectation": "...", "met": true|false,
"justification": "..."}]} in the order given."""


class _Verdicts(BaseModel):
    results: list[dict[str, Any]]


def transcript(episode: Tau2Episode, user_messages: list[str] | None = None) -> str:
    lines = [f"agent: {text}" for text in episode.agent_messages]
    if user_messages:
        lines = [f"user: {text}" for text in user_messages] + lines
    for call in episode.calls:
        lines.append(f"{call.requestor} tool call {call.name}({json.dumps(call.arguments)})")
    return "\n".join(lines)


class NLJudge:
    """Ask ``model`` for a verdict per NL assertion of a task."""

    def __init__(self, model: Model, *, thinking: bool = False) -> None:
        self.model = model
        self.thinking = thinking

    async def judge(self, task: Tau2Task, episode: Tau2Episode) -> list[NLVerdict]:
        criteria = task.evaluation_criteria
        assertions = list(criteria.nl_assertions or []) if criteria else []
        if not assertions:
            return []
        agent: Agent[None, str] = Agent(
            self.model, instructions=JUDGE_PROMPT, thinking=self.thinking, name="tau2-judge"
        )
        numbered = "\n".join(f"{i + 1}. {text}" for i, text in enumerate(assertions))
        prompt = f"<conversation>\n{transcript(episode)}\n</conversation>\n\n{numbered}"
        try:
            result = await agent.run(prompt)
        finally:
            await agent.aclose()
        if result.status is not EpisodeStatus.COMPLETED:
            raise RuntimeError(f"judge failed: {result.status.value}: {result.error}")
        return parse_verdicts(result.text, assertions)


def parse_verdicts(text: str, assertions: list[str]) -> list[NLVerdict]:
    """The judge's JSON; an assertion without a readable verdict counts as not met."""
    start, end = text.find("{"), text.rfind("}")
    results: list[dict[str, Any]] = []
    if start != -1 and end > start:
        try:
            results = _Verdicts.model_validate_json(text[start : end + 1]).results
        except ValueError:
            results = []
    verdicts = []
    for index, assertion in enumerate(assertions):
        item = results[index] if index < len(results) else {}
        verdicts.append(
            NLVerdict(
                assertion=assertion,
                met=item.get("met") is True,
                justification=str(item.get("justification", "no verdict given")),
            )
        )
    return verdicts
