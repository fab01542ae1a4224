"""One episode: an agent serving a simulated customer on a fresh database, then the reward.

The agent runs through the planner loop (``agent.conversation(deps=state)``); each customer
message is ``conv.send``-ed, and the agent's final text of that turn is what the customer hears
(tau-bench's ``respond``). The episode ends when the customer says ``###STOP###``, when the agent
calls a terminating tool (``transfer_to_human_agents``), or when the agent has used ``max_steps``
model calls (tau-bench's 30-step cap, reward 0). Model or simulator failures are infrastructure
failures: they carry no reward and are reported apart.
"""

from __future__ import annotations

import warnings
from collections.abc import Awaitable, Callable
from enum import StrEnum
from functools import partial
from typing import Any, TypeVar

from pydantic import BaseModel

from agentkit.agent import Agent
from agentkit.conversation import Conversation
from agentkit.result import RunResult
from agentkit.trajectory.recorder import Recorder
from agentkit.trajectory.records import EpisodeStatus, FailureAttribution

from .domain import Domain, EpisodeState
from .reward import Reward, compute_reward
from .user import STOP, UserSimulator

DEFAULT_MAX_STEPS = 30
T = TypeVar("T")


class Ending(StrEnum):
    USER_STOP = "user_stop"
    TRANSFER = "transfer"
    MAX_STEPS = "max_steps"
    AGENT_LIMIT = "agent_limit"
    INFRASTRUCTURE = "infrastructure"


class EpisodeResult(BaseModel):
    domain: str
    task_index: int
    trial: int = 0
    episode_id: str
    ending: Ending
    reward: Reward | None = None
    error: str | None = None
    model_calls: int = 0
    user_turns: int = 0

    @property
    def infrastructure_failure(self) -> bool:
        return self.ending is Ending.INFRASTRUCTURE

    @property
    def success(self) -> bool:
        return self.reward is not None and self.reward.success


async def run_episode(
    agent: Agent[Any, Any],
    domain: Domain,
    task_index: int,
    user: UserSimulator,
    *,
    trial: int = 0,
    max_steps: int = DEFAULT_MAX_STEPS,
    recorder: Recorder | None = None,
) -> EpisodeResult:
    """Run one episode of ``domain.tasks[task_index]`` and score it. tau-bench's rule that only
    the first tool call of a model turn runs is the agent's ``max_tool_calls_per_turn``
    (:meth:`Domain.agent` sets it)."""
    task = domain.tasks[task_index]
    limit = agent.max_tool_calls_per_turn
    if limit != domain.max_tool_calls_per_turn:
        warnings.warn(
            f"the agent runs {limit or 'all'} tool call(s) per turn, tau-bench's {domain.name} "
            f"runs {domain.max_tool_calls_per_turn or 'all'}: its scores are not comparable "
            "(build the agent with domain.agent(model) to match)",
            stacklevel=2,
        )
    conv = agent.conversation(
        deps=domain.new_episode(task, task_index),
        recorder=recorder,
        task_id=f"{domain.name}/{task_index}",
        group_id=f"{domain.name}/{task_index}",
        sample_index=trial,
        metadata={
            "domain": domain.name,
            "task_index": task_index,
            "trial": trial,
            "max_tool_calls_per_turn": limit,
        },
    )
    episode = _Episode(domain, task_index, trial, conv, max_steps)
    try:
        ending = await episode.play(user, task.instruction)
    except _InfrastructureFailure as exc:
        return await episode.infrastructure(str(exc))
    return await episode.score(ending)


class _InfrastructureFailure(Exception):
    """The model or the simulator failed: the episode carries no reward."""


async def _guarded(who: str, step: Callable[[], Awaitable[T]]) -> T:
    """``await step()``; any failure is the infrastructure's, named after ``who``."""
    try:
        return await step()
    except Exception as exc:
        raise _InfrastructureFailure(f"{who}: {type(exc).__name__}: {exc}") from exc


class _Episode:
    """One episode's conversation, its database (the conversation's deps), and its counters."""

    def __init__(
        self,
        domain: Domain,
        task_index: int,
        trial: int,
        conv: Conversation[EpisodeState, Any],
        max_steps: int,
    ) -> None:
        self.domain = domain
        self.task_index = task_index
        self.trial = trial
        self.conv = conv
        self.state = conv.deps
        self.max_steps = max_steps
        self.user_turns = 0

    @property
    def model_calls(self) -> int:
        return len(self.conv.trajectory.calls)

    async def play(self, user: UserSimulator, instruction: str) -> Ending:
        """Customer and agent take turns until one of them ends the episode."""
        message = await _guarded("user simulator", partial(user.reset, instruction))
        while True:
            self.user_turns += 1
            await self.conv.record_env_step("user", message)
            if STOP in message:
                return Ending.USER_STOP
            run = await self.agent_turn(message)
            ending = self.ending_after(run)
            if ending is not None:
                return ending
            self.state.respond(run.text)
            await self.conv.record_env_step("agent_reply", run.text)
            message = await _guarded("user simulator", partial(user.step, run.text))

    async def agent_turn(self, message: str) -> RunResult[Any]:
        """The agent's answer to one customer message: it keeps going past its own per-message
        ``max_turns``; the episode's cap is ``max_steps`` model calls."""
        run = await _guarded("agent", lambda: self.conv.send(message))
        while (
            run.status is EpisodeStatus.MAX_TURNS
            and not self.state.terminated
            and self.model_calls < self.max_steps
        ):
            run = await _guarded("agent", lambda: self.conv.send(None))
        if run.status is EpisodeStatus.MODEL_ERROR:
            raise _InfrastructureFailure(f"agent model: {run.error}")
        if run.status is EpisodeStatus.FAILED:  # send() returns an internal error, never raises
            raise _InfrastructureFailure(f"agent: {run.error}")
        return run

    def ending_after(self, run: RunResult[Any]) -> Ending | None:
        """How the episode ends after the agent's turn ``run``; ``None``: it goes on."""
        if self.state.terminated:
            return Ending.TRANSFER
        if self.model_calls >= self.max_steps:
            return Ending.MAX_STEPS
        if run.status is not EpisodeStatus.COMPLETED:
            return Ending.AGENT_LIMIT
        return None

    async def score(self, ending: Ending) -> EpisodeResult:
        reward = compute_reward(self.state)
        if ending in (Ending.MAX_STEPS, Ending.AGENT_LIMIT):
            # tau-bench only scores episodes that end; a capped one keeps reward 0
            reward = reward.model_copy(update={"reward": 0.0})
        await self.conv.finish(
            status=EpisodeStatus.COMPLETED,
            reward=reward.reward,
            reward_components=reward.model_dump(),
            failure=None if reward.success else FailureAttribution.POLICY,
            termination_reason=ending.value,
        )
        return self.result(ending, reward)

    async def infrastructure(self, error: str) -> EpisodeResult:
        await self.conv.finish(
            status=EpisodeStatus.FAILED,
            error=error,
            failure=FailureAttribution.INFRASTRUCTURE,
            termination_reason=Ending.INFRASTRUCTURE.value,
        )
        return self.result(Ending.INFRASTRUCTURE, error=error)

    def result(
        self, ending: Ending, reward: Reward | None = None, error: str | None = None
    ) -> EpisodeResult:
        return EpisodeResult(
            domain=self.domain.name,
            task_index=self.task_index,
            trial=self.trial,
            episode_id=self.conv.episode_id,
            ending=ending,
            reward=reward,
            error=error,
            model_calls=self.model_calls,
            user_turns=self.user_turns,
        )
