"""One tau2 episode: the agent serves a simulated user (who may act on their own device), then
tau2's evaluation scores it.

The agent runs through the planner loop with the episode as ``deps``; each user message is sent
to it (the first in the episode's prompt, the later ones recorded as ``user`` steps, so training
masks never learn the user's words), and the agent's final text of a turn is what the user
hears. The user's own tool calls run on the same episode with requestor ``user`` and are logged
with the episode's calls (returned in :class:`Tau2EpisodeResult` and in the trajectory's
output), never in the agent's context.

Endings (tau2's): the user says a stop token (``user_stop``), the agent says ``###STOP###``
(``agent_stop``), the agent used ``max_steps`` model calls (``max_steps``), tool errors reached
``max_errors`` (``too_many_errors``), the agent's turn ended otherwise (``agent_error``); model,
user-simulator or judge failures are ``infrastructure`` (no reward, kept apart in pass^k).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from agentkit.agent import Agent
from agentkit.trajectory.recorder import Recorder
from agentkit.trajectory.records import EpisodeStatus, FailureAttribution

from .domain import Tau2Domain, Tau2Episode
from .evaluation import Tau2Reward, evaluate, reward_components
from .judge import NLJudge
from .tasks import Tau2Task
from .users import GREETING, Tau2User, is_user_stop

DEFAULT_MAX_STEPS = 100
DEFAULT_MAX_ERRORS = 10
AGENT_STOP = "###STOP###"


class Tau2Ending(StrEnum):
    USER_STOP = "user_stop"
    AGENT_STOP = "agent_stop"
    MAX_STEPS = "max_steps"
    TOO_MANY_ERRORS = "too_many_errors"
    AGENT_ERROR = "agent_error"
    INFRASTRUCTURE = "infrastructure"


class CallRecord(BaseModel):
    requestor: str
    name: str
    arguments: dict[str, Any]
    observation: str
    error: bool


class Tau2EpisodeResult(BaseModel):
    domain: str
    task_id: str
    task_index: int
    trial: int = 0
    episode_id: str
    ending: Tau2Ending
    reward: Tau2Reward | None = None
    error: str | None = None
    model_calls: int = 0
    user_turns: int = 0
    calls: list[CallRecord] = Field(default_factory=list)

    @property
    def infrastructure_failure(self) -> bool:
        return self.ending is Tau2Ending.INFRASTRUCTURE

    @property
    def success(self) -> bool:
        return self.reward is not None and self.reward.success


class _Run:
    """The moving parts of one episode (keeps :func:`run_tau2_episode` short)."""

    def __init__(
        self, agent: Agent[Any, Any], episode: Tau2Episode, task_index: int, trial: int, **conv: Any
    ) -> None:
        self.episode = episode
        self.task_index = task_index
        self.trial = trial
        self.conv = agent.conversation(deps=episode, **conv)
        self.user_turns = 0

    def result(self, ending: Tau2Ending, **extra: Any) -> Tau2EpisodeResult:
        episode = self.episode
        return Tau2EpisodeResult(
            domain=episode.domain.name,
            task_id=episode.task.id,
            task_index=self.task_index,
            trial=self.trial,
            episode_id=self.conv.episode_id,
            ending=ending,
            model_calls=len(self.conv.trajectory.calls),
            user_turns=self.user_turns,
            calls=[CallRecord(**vars(call)) for call in episode.calls],
            **extra,
        )

    def set_prompt(self, message: str) -> None:
        """The user's opening message is the episode's prompt (after the instructions)."""
        start = self.conv.trajectory.start
        system = [{"role": "system", "content": start.instructions}] if start.instructions else []
        start.prompt_messages = [*system, {"role": "user", "content": message}]

    def errors(self) -> int:
        return sum(call.error for call in self.episode.calls)

    async def agent_turn(self, message: str, max_steps: int, max_errors: int) -> Tau2Ending | None:
        """Send the user's message; return an ending, or None when the agent replied."""
        conv = self.conv
        run = await conv.send(message)
        while run.status is EpisodeStatus.MAX_TURNS and len(conv.trajectory.calls) < max_steps:
            if self.errors() >= max_errors:
                return Tau2Ending.TOO_MANY_ERRORS
            run = await conv.send(None)
        if run.status in (EpisodeStatus.MODEL_ERROR, EpisodeStatus.FAILED):
            # the server or the runtime failed, not the policy: an infrastructure ending
            raise RuntimeError(f"agent {run.status.value}: {run.error}")
        if self.errors() >= max_errors:
            return Tau2Ending.TOO_MANY_ERRORS
        if len(conv.trajectory.calls) >= max_steps:
            return Tau2Ending.MAX_STEPS
        if run.status is not EpisodeStatus.COMPLETED:
            return Tau2Ending.AGENT_ERROR
        self.episode.agent_messages.append(run.text)
        await conv.record_env_step("agent_reply", run.text)
        return Tau2Ending.AGENT_STOP if AGENT_STOP in run.text else None


async def run_tau2_episode(
    agent: Agent[Any, Any],
    domain: Tau2Domain,
    task_index: int,
    user: Tau2User,
    *,
    trial: int = 0,
    max_steps: int = DEFAULT_MAX_STEPS,
    max_errors: int = DEFAULT_MAX_ERRORS,
    recorder: Recorder | None = None,
    judge: NLJudge | None = None,
    task_key: str | None = None,
    metadata: dict[str, Any] | None = None,
    label: Any = None,
) -> Tau2EpisodeResult:
    """Play ``domain.tasks[task_index]`` with ``agent`` and ``user``; score it as tau2 does.

    The trajectory's ``task_id`` and ``group_id`` are ``task_key`` (default
    ``<domain>/<task id>``) and its ``sample_index`` is ``trial``; ``metadata`` is added to the
    episode's own and ``label`` is recorded as its label (rollouts pass their task's)."""
    task = domain.tasks[task_index]
    episode = domain.new_episode(task)
    key = task_key or f"{domain.name}/{task.id}"
    state = _Run(
        agent,
        episode,
        task_index,
        trial,
        recorder=recorder,
        task_id=key,
        group_id=key,
        sample_index=trial,
        metadata={
            **(metadata or {}),
            "domain": domain.name,
            "task_id": task.id,
            "trial": trial,
            "benchmark": "tau2",
        },
    )
    state.conv.trajectory.start.label = label

    try:
        try:
            ending = await _dialogue(state, user, max_steps, max_errors)
        finally:
            await user.aclose()
        reward = await _score(domain, task, episode, ending, judge)
    except Exception as exc:
        # the model server, the user simulator, the judge or the runtime failed, not the policy
        error = f"{type(exc).__name__}: {exc}"
        await state.conv.finish(
            status=EpisodeStatus.FAILED,
            error=error,
            failure=FailureAttribution.INFRASTRUCTURE,
            termination_reason=Tau2Ending.INFRASTRUCTURE.value,
        )
        return state.result(Tau2Ending.INFRASTRUCTURE, error=error)
    out = state.result(ending, reward=reward)
    await state.conv.finish(
        status=EpisodeStatus.COMPLETED,
        reward=reward.reward,
        reward_components=reward_components(reward),
        output={"calls": [c.model_dump() for c in out.calls]},
        failure=None if reward.success else FailureAttribution.POLICY,
        termination_reason=ending.value,
    )
    return out


async def _score(
    domain: Tau2Domain,
    task: Tau2Task,
    episode: Tau2Episode,
    ending: Tau2Ending,
    judge: NLJudge | None,
) -> Tau2Reward:
    verdicts = None
    if judge is not None and task.evaluation_criteria and task.evaluation_criteria.nl_assertions:
        verdicts = await judge.judge(task, episode)
    return evaluate(
        domain,
        task,
        episode.calls,
        episode.agent_messages,
        ending=ending.value,
        nl_verdicts=verdicts,
        live=episode.env,
    )


async def _dialogue(state: _Run, user: Tau2User, max_steps: int, max_errors: int) -> Tau2Ending:
    episode = state.episode
    message = await user.start(episode, GREETING)
    state.set_prompt(message)
    while True:
        state.user_turns += 1
        if state.user_turns > 1:  # the first message is in the episode's prompt
            await state.conv.record_env_step("user", message)
        if is_user_stop(message):
            return Tau2Ending.USER_STOP
        if state.errors() >= max_errors:
            return Tau2Ending.TOO_MANY_ERRORS
        ending = await state.agent_turn(message, max_steps, max_errors)
        if ending is not None:
            return ending
        message = await user.reply(episode, episode.agent_messages[-1])
