"""Resuming an episode cut short, in token mode, from its last complete model call.

:func:`resume_episode` reads the :class:`~agentkit.trajectory.partial.ResumePoint` of a
recorded episode, opens a new episode (``metadata.resumed_from`` names the original) whose
model session holds exactly the original's token context, runs the turns on from the recorded
tool results, scores it and closes it. The store then has both; exports join them with
:func:`~agentkit.trajectory.partial.merge_partial_rollouts`, so the trainer sees one sequence.
"""

from __future__ import annotations

from typing import Any

from agentkit.agent import Agent
from agentkit.messages import from_openai
from agentkit.result import RunResult, failure_attribution
from agentkit.rollout_episode import RolloutTask
from agentkit.rollout_rewards import Reward, RewardFn, score_episode
from agentkit.trajectory.partial import RESUMED_FROM, NotResumable, resume_point
from agentkit.trajectory.recorder import Recorder
from agentkit.trajectory.records import FailureAttribution, Trajectory


async def resume_episode(
    agent: Agent[Any, Any],
    original: Trajectory,
    recorder: Recorder,
    *,
    deps: Any = None,
    reward_fn: RewardFn | None = None,
) -> RunResult[Any]:
    """Go on with ``original`` from its last complete call; the continuation is recorded (and
    closed, scored by ``reward_fn`` when given) as its own episode. :class:`NotResumable` when
    there is nothing to go on from or the agent is not in token mode."""
    if agent.model.mode != "tokens":
        raise NotResumable("resuming token-exactly needs a token-mode model")
    point = resume_point(original)
    start = original.start
    conv = agent.conversation(
        deps=deps,
        thinking=start.thinking,
        recorder=recorder,
        message_history=[from_openai(m) for m in point.messages],
        task_id=start.task_id,
        group_id=start.group_id,
        sample_index=start.sample_index,
        metadata={
            **start.metadata,
            RESUMED_FROM: original.episode_id,
            "resumed_after_calls": point.kept_calls,
        },
        label=start.label,
    )
    conv.trajectory.start.prompt_messages = list(start.prompt_messages)
    load = getattr(conv.session, "import_state", None)
    if not callable(load):
        raise NotResumable("the model session cannot take a token context")
    load(point.token_context)
    conv.turn = point.turns_done
    result = await conv.send(None)
    reward: Reward | None = None
    error = result.error
    failure = failure_attribution(result.status)
    if reward_fn is not None and result.ok:
        task = RolloutTask(
            id=start.task_id or original.episode_id,
            prompt="",
            label=start.label,
            metadata=dict(start.metadata),
            deps=deps,
        )
        try:
            reward = await score_episode(reward_fn, task, result)
        except Exception as exc:  # the verifier broke: keep the episode out of training
            failure, error = FailureAttribution.INFRASTRUCTURE, f"reward function failed: {exc}"
    await conv.finish(
        status=result.status,
        output=result.output,
        error=error,
        failure=failure,
        termination_reason=result.status.value,
        reward=reward.value if reward else None,
        reward_components=reward.components if reward else None,
        turn_rewards=reward.turn_rewards if reward else None,
        tool_rewards=reward.tool_rewards if reward else None,
    )
    return result
