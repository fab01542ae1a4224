"""One episode: an agent serving a simulated customer on a fresh database, then the reward.

The agent runs through the planner loop (``agent.conversation(deps=state)``); each customer
message is ``conv.send``-ed, and the agent's final text of that turn is what the customer hears
(tau-bench's ``respond``). The episode ends when the customer says ``###STOP###``, when the agent
calls a terminating tool (``transfer_to_human_agents``), or when the agent has used ``max_steps``
model calls (tau-bench's 30-step cap, reward 0). Model or simulator failures are infrastructure
failures: they carry no reward and are reported apart.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from agentkit.agent import Agent
from agentkit.trajectory.recorder import Recorder
from agentkit.trajectory.records import EpisodeStatus, FailureAttribution

from .domain import Domain
from .reward import Reward, compute_reward
from .user import STOP, UserSimulator

DEFAULT_MAX_STEPS = 30


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
    state = domain.new_episode(task, task_index)
    conv = agent.conversation(
        deps=state,
        recorder=recorder,
        task_id=f"{domain.name}/{task_index}",
        group_id=f"{domain.name}/{task_index}",
        sample_index=trial,
        metadata={"domain": domain.name, "task_index": task_index, "trial": trial},
    )
    user_turns = 0

    def result(
        ending: Ending, reward: Reward | None = None, error: str | None = None
    ) -> EpisodeResult:
        return EpisodeResult(
            domain=domain.name,
            task_index=task_index,
            trial=trial,
            episode_id=conv.episode_id,
            ending=ending,
            reward=reward,
            error=error,
            model_calls=len(conv.trajectory.calls),
            user_turns=user_turns,
        )

    async def infrastructure(error: str) -> EpisodeResult:
        await conv.finish(
            status=EpisodeStatus.FAILED,
            error=error,
            failure=FailureAttribution.INFRASTRUCTURE,
            termination_reason=Ending.INFRASTRUCTURE.value,
        )
        return result(Ending.INFRASTRUCTURE, error=error)

    try:
        message = await user.reset(task.instruction)
    except Exception as exc:
        return await infrastructure(f"user simulator: {type(exc).__name__}: {exc}")
    ending = Ending.USER_STOP
    while True:
        user_turns += 1
        await conv.record_env_step("user", message)
        if STOP in message:
            break
        try:
            run = await conv.send(message)
        except Exception as exc:
            return await infrastructure(f"agent: {type(exc).__name__}: {exc}")
        while (
            run.status is EpisodeStatus.MAX_TURNS
            and not state.terminated
            and len(conv.trajectory.calls) < max_steps
        ):
            # the agent's own max_turns is per message; the episode's cap is max_steps
            try:
                run = await conv.send(None)
            except Exception as exc:
                return await infrastructure(f"agent: {type(exc).__name__}: {exc}")
        if run.status is EpisodeStatus.MODEL_ERROR:
            return await infrastructure(f"agent model: {run.error}")
        if run.status is EpisodeStatus.FAILED:  # send() returns an internal error, never raises
            return await infrastructure(f"agent: {run.error}")
        if state.terminated:
            ending = Ending.TRANSFER
            break
        if len(conv.trajectory.calls) >= max_steps:
            ending = Ending.MAX_STEPS
            break
        if run.status is not EpisodeStatus.COMPLETED:
            ending = Ending.AGENT_LIMIT
            break
        state.respond(run.text)
        await conv.record_env_step("agent_reply", run.text)
        try:
            message = await user.step(run.text)
        except Exception as exc:
            return await infrastructure(f"user simulator: {type(exc).__name__}: {exc}")
    reward = compute_reward(state)
    if ending in (Ending.MAX_STEPS, Ending.AGENT_LIMIT):
        # tau-bench only scores episodes that end; a capped one keeps reward 0
        reward = reward.model_copy(update={"reward": 0.0})
    await conv.finish(
        status=EpisodeStatus.COMPLETED,
        reward=reward.reward,
        reward_components=reward.model_dump(),
        failure=None if reward.success else FailureAttribution.POLICY,
        termination_reason=ending.value,
    )
    return result(ending, reward)
