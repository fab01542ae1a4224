"""SFT export: the OpenAI-messages view of every usable finished episode (chat mode too)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from agentkit.trajectory.groups import group_key
from agentkit.trajectory.records import ModelCallRecord, Trajectory

from .episode_parts import prompt_messages
from .selection import ExportReport, episode_reward, exclusion_reason


def sft_messages(traj: Trajectory) -> list[dict[str, Any]]:
    """The episode as OpenAI chat messages (assistant turns keep ``reasoning_content``, tool
    calls with JSON-string arguments, and the ``call_index`` of the model call they came from).

    Built from the records, so the tool outputs are the rendered text the model saw.
    """
    messages = prompt_messages(traj)
    for item in traj.items():
        if isinstance(item, ModelCallRecord):
            message: dict[str, Any] = {"role": "assistant", "content": item.content}
            if item.reasoning is not None:
                message["reasoning_content"] = item.reasoning
            if item.tool_calls:
                message["tool_calls"] = [call.to_openai() for call in item.tool_calls]
            message["call_index"] = item.index
            messages.append(message)
        elif item.step_type == "tool":
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": item.call.id if item.call else "",
                    "name": item.call.name if item.call else "",
                    "content": item.output,
                }
            )
        elif item.step_type == "user":
            messages.append({"role": "user", "content": item.output})
    return messages


def sft_records(
    trajectories: Iterable[Trajectory],
    report: ExportReport | None = None,
    *,
    min_reward: float | None = None,
) -> list[dict[str, Any]]:
    """The OpenAI-messages view for SFT: one record per usable finished episode.

    Chat-mode episodes are included (no token ids needed). ``min_reward`` keeps only episodes
    scored at least that much (rejection sampling).
    """
    report = report if report is not None else ExportReport()
    out: list[dict[str, Any]] = []
    for traj in trajectories:
        report.episodes += 1
        reason = exclusion_reason(traj)
        reward = episode_reward(traj)
        if reason is None and min_reward is not None and (reward is None or reward < min_reward):
            reason = f"reward below {min_reward}"
        if reason is not None:
            report.exclude(traj.episode_id, reason)
            continue
        end = traj.end
        assert end is not None
        report.exported_episodes += 1
        report.rows += 1
        out.append(
            {
                "messages": sft_messages(traj),
                "tools": traj.start.tools,
                "chat_template_kwargs": {"enable_thinking": traj.start.thinking},
                "episode_id": traj.episode_id,
                "task_id": traj.start.task_id,
                "group_id": group_key(traj),
                "sample_index": traj.start.sample_index,
                "status": end.status.value,
                "reward": reward,
                "token_exact": traj.start.token_exact,
            }
        )
    return out
