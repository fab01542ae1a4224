"""verl's agent loop that runs an agentkit :class:`~agentkit.Agent` in token mode.

Registered in verl's agent-loop registry as ``agentkit`` (importing this module registers it,
as verl's own loops are). Point verl at it with an agent-loop config file
(``actor_rollout_ref.rollout.agent.agent_loop_config_path``)::

    - name: agentkit
      _target_: agentkit.integrations.verl.agent_loop.AgentkitAgentLoop
      agent_factory: mypkg.agents:make_agent     # make_agent(model) -> Agent
      reward_fn: mypkg.rewards:score             # optional: (task, result) -> float | Reward
      max_sample_retries: 2

and a dataset whose ``agent_name`` column is ``agentkit``. Each sample runs one episode: the
factory gets a :class:`~agentkit.integrations.verl.model.VerlTokens` model over verl's own
server manager (token ids in, token ids and log-probs out), the episode's group is verl's
``uid`` (so GRPO groups are verl's), and the output's ids, mask and log-probs are the recorded
episode's training row. Without ``reward_fn``, ``reward_score`` stays ``None`` and verl's reward
loop scores the sample. A sample failing for infrastructure reasons is run again up to
``max_sample_retries`` times; one still failing comes back with an all-zero response mask and
``extra_fields["agentkit_excluded"]`` naming why (verl has no way to drop a sample here).
"""

from __future__ import annotations

import os
from typing import Any

try:
    from verl.experimental.agent_loop.agent_loop import (
        AgentLoopBase,
        AgentLoopMetrics,
        AgentLoopOutput,
        register,
    )
except ImportError as exc:  # this module runs inside verl's rollout
    raise ImportError(
        f"the agentkit agent loop runs inside verl: pip install verl (and its torch) ({exc})"
    ) from exc

from agentkit.agent import Agent
from agentkit.integrations.episode import load_object, run_with_retries
from agentkit.integrations.verl.model import VerlTokens
from agentkit.models.base import ModelSettings
from agentkit.rollout_episode import RewardFn, RolloutTask
from agentkit.trajectory.exports import ExportReport, trainable_episodes, verl_rows
from agentkit.trajectory.records import Trajectory

_SAMPLING_KEYS = ("temperature", "top_p", "top_k")


def task_from_verl(kwargs: dict[str, Any]) -> RolloutTask:
    """The agentkit task of one verl dataset row (``raw_prompt`` messages, ``uid``, the
    ground truth of ``reward_model``, ``extra_info``)."""
    messages = list(kwargs.get("raw_prompt") or [])
    users = [m for m in messages if m.get("role") == "user"]
    if not users:
        raise ValueError("the verl sample's raw_prompt holds no user message")
    reward_model = kwargs.get("reward_model") or {}
    extra = dict(kwargs.get("extra_info") or {})
    uid = kwargs.get("uid")
    return RolloutTask(
        id=str(uid if uid is not None else extra.get("index", kwargs.get("index", "sample"))),
        prompt=str(users[-1]["content"]),
        label=reward_model.get("ground_truth") if isinstance(reward_model, dict) else None,
        metadata={"extra_info": extra, "data_source": kwargs.get("data_source")},
    )


def output_for(
    traj: Trajectory, response_length: int, pad_id: int, *, scored: bool = True
) -> AgentLoopOutput:
    """verl's output for one recorded episode (its last training row, capped at
    ``response_length`` as verl's own loops cap it). Unless ``scored``, ``reward_score`` is
    left ``None`` for verl's reward loop."""
    report = ExportReport()
    source = traj
    if not scored and traj.end is not None and traj.end.reward is None:
        # a placeholder so the row builder takes it; the output carries no reward
        source = traj.model_copy(update={"end": traj.end.model_copy(update={"reward": 0.0})})
    episodes = trainable_episodes([source], report, group_policy="flag")
    if not episodes:
        reason = report.excluded[0].reason if report.excluded else "not exported"
        prompt = traj.calls[0].input_ids if traj.calls and traj.calls[0].input_ids else [pad_id]
        return AgentLoopOutput(
            prompt_ids=list(prompt), response_ids=[pad_id], response_mask=[0],
            reward_score=0.0, num_turns=0, metrics=AgentLoopMetrics(),
            extra_fields={"agentkit_excluded": reason, "episode_id": traj.episode_id},
        )  # fmt: skip
    rows = verl_rows(episodes)
    row = rows[-1]
    extra = dict(row["extra_fields"])
    extra["agentkit_group"] = row["uid"]
    if len(rows) > 1:
        extra["agentkit_rows_left_out"] = len(rows) - 1
    if len(row["response_ids"]) > response_length:
        extra["agentkit_response_cut"] = len(row["response_ids"]) - response_length
    if not scored:
        row["reward_score"] = None  # verl's reward loop scores it
    logprobs = row["response_logprobs"]
    return AgentLoopOutput(
        prompt_ids=row["prompt_ids"],
        response_ids=row["response_ids"][:response_length],
        response_mask=row["response_mask"][:response_length],
        response_logprobs=logprobs[:response_length] if logprobs is not None else None,
        reward_score=row["reward_score"],
        num_turns=row["num_turns"],
        metrics=AgentLoopMetrics(**row["metrics"]),
        extra_fields=extra,
    )


@register("agentkit")
class AgentkitAgentLoop(AgentLoopBase):
    """Runs one agentkit episode per verl sample against verl's server manager."""

    def __init__(
        self,
        *args: Any,
        agent_factory: str | None = None,
        reward_fn: str | None = None,
        max_sample_retries: int = 2,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        factory_path = agent_factory or os.environ.get("AGENTKIT_VERL_AGENT")
        if not factory_path:
            raise ValueError(
                "the agentkit agent loop needs agent_factory (package.module:make_agent) in its "
                "agent-loop config, or AGENTKIT_VERL_AGENT"
            )
        self.factory = load_object(factory_path)
        reward_path = reward_fn or os.environ.get("AGENTKIT_VERL_REWARD")
        self.reward_fn: RewardFn | None = load_object(reward_path) if reward_path else None
        self.max_sample_retries = max_sample_retries
        self.response_length = int(self.rollout_config.response_length)

    def _settings(self, sampling_params: dict[str, Any]) -> ModelSettings:
        known = {
            k: sampling_params[k] for k in _SAMPLING_KEYS if sampling_params.get(k) is not None
        }
        return ModelSettings(max_tokens=self.response_length, **known)

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
        task = task_from_verl(kwargs)
        model = VerlTokens(
            self.server_manager, self.tokenizer, settings=self._settings(sampling_params)
        )
        agent: Agent[Any, Any] = self.factory(model)
        try:
            attempts = await run_with_retries(
                agent, task, int(kwargs.get("index") or 0), self.reward_fn,
                max_retries=self.max_sample_retries, group_id=task.id,
            )  # fmt: skip
        finally:
            await agent.aclose()
        pad = getattr(self.tokenizer, "pad_token_id", None)
        output = output_for(
            attempts[-1], self.response_length, int(pad or 0), scored=self.reward_fn is not None
        )
        output.extra_fields["agentkit_attempts"] = len(attempts)
        return output
