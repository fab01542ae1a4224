"""Partial rollouts: where an episode cut short can go on from, and the whole episode after.

An episode cut short (the server aborted a call, weights were updated, the process crashed)
keeps every model call that completed. :func:`resume_point` finds the last complete call whose
tool calls all have their results recorded, and gives what a token-mode session needs to go
on from exactly there: the token context (that call's ``input_ids + output_ids``), the
conversation up to that call's tool results, the stop token that ended it, and the turns done.
The continuation runs as its own episode (``metadata.resumed_from``);
:func:`merge_resumed` joins the kept calls and the continuation's calls into one trajectory,
so its training rows are one prefix-merged sequence with the loss mask on every sampled token
and nothing else, and the weight version of every call is kept (rows made by several weight
versions are flagged off-policy). :func:`merge_partial_rollouts` does that for a whole store.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

from agentkit.dialects import glm45
from agentkit.trajectory.records import EnvStepRecord, ModelCallRecord, Trajectory

RESUMED_FROM = "resumed_from"
_STOPS = dict(zip(glm45.STOP_TOKEN_IDS, glm45.STOP_TOKENS, strict=True))


class NotResumable(ValueError):
    """The episode has nothing a token-mode session can go on from."""


class ResumePoint(BaseModel):
    """Where an episode cut short goes on from."""

    episode_id: str
    kept_calls: int  # the calls kept (indices 0..kept_calls-1 in order)
    turns_done: int
    messages: list[dict[str, Any]]  # OpenAI dicts: up to the last kept call's tool results
    token_context: dict[str, Any]  # ``ids``, ``consumed``, ``last_stop`` (session import)
    weight_version: str | None = None


def _complete(call: ModelCallRecord) -> bool:
    return (
        not call.failed
        and call.input_ids is not None
        and call.output_ids is not None
        and call.finish_reason not in (None, "abort", "length")
    )


def _results_recorded(call: ModelCallRecord, steps: list[EnvStepRecord]) -> bool:
    done = {s.call.id for s in steps if s.call is not None and s.turn == call.turn}
    return all(tc.id in done for tc in call.tool_calls)


def resume_point(trajectory: Trajectory) -> ResumePoint:
    """The last complete call with all its tool results, or :class:`NotResumable`."""
    if trajectory.start.mode != "tokens":
        raise NotResumable("only token-mode episodes resume token-exactly")
    calls = sorted(trajectory.calls, key=lambda c: c.index)
    kept = 0
    for call in calls:
        if not _complete(call) or not call.tool_calls:
            break
        if not _results_recorded(call, trajectory.steps):
            break
        kept += 1
    if kept == 0:
        raise NotResumable(f"episode {trajectory.episode_id} has no complete call to go on from")
    last = calls[kept - 1]
    messages = _messages(trajectory)
    assistants = [i for i, m in enumerate(messages) if m.get("role") == "assistant"]
    if len(assistants) < kept:
        raise NotResumable("the recorded conversation has fewer replies than complete calls")
    consumed = assistants[kept - 1] + 1
    cut = assistants[kept] if len(assistants) > kept else len(messages)
    stop = last.matched_stop
    return ResumePoint(
        episode_id=trajectory.episode_id,
        kept_calls=kept,
        turns_done=last.turn + 1,
        messages=messages[:cut],
        token_context={
            "ids": (last.input_ids or []) + (last.output_ids or []),
            "consumed": consumed,
            "last_stop": _STOPS.get(stop) if isinstance(stop, int) else stop,
        },
        weight_version=last.weight_version,
    )


def _messages(trajectory: Trajectory) -> list[dict[str, Any]]:
    """The conversation: the end record's, or (a crashed run has none) rebuilt from the
    records: the opening messages, then each call's reply and the results of its turn."""
    end = trajectory.end
    if end is not None and end.messages:
        return list(end.messages)
    messages = list(trajectory.start.prompt_messages)
    if not messages:
        raise NotResumable(f"episode {trajectory.episode_id} recorded no opening messages")
    for item in trajectory.items():
        if isinstance(item, ModelCallRecord):
            if item.failed:
                continue
            reply: dict[str, Any] = {"role": "assistant", "content": item.content}
            if item.reasoning is not None:
                reply["reasoning_content"] = item.reasoning
            if item.tool_calls:
                reply["tool_calls"] = [tc.to_openai() for tc in item.tool_calls]
            messages.append(reply)
        elif item.step_type == "tool":
            call = item.call
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": call.id if call else "",
                    "name": call.name if call else "",
                    "content": item.output,
                }
            )
        elif item.step_type == "user":
            messages.append({"role": "user", "content": item.output})
    return messages


def merge_resumed(original: Trajectory, continuation: Trajectory, point: ResumePoint) -> Trajectory:
    """One trajectory: the original's kept calls and steps, then the continuation's, renumbered
    to follow them, with the continuation's end (its status, reward, final conversation)."""
    kept = sorted(original.calls, key=lambda c: c.index)[: point.kept_calls]
    steps = [s for s in original.steps if s.turn < point.turns_done]
    step_base = max((s.index for s in steps), default=-1) + 1
    episode_id = original.episode_id
    calls = [
        c.model_copy(
            update={"episode_id": episode_id, "index": c.index + point.kept_calls, "turn": c.turn}
        )
        for c in sorted(continuation.calls, key=lambda c: c.index)
    ]
    more = [
        s.model_copy(update={"episode_id": episode_id, "index": s.index + step_base})
        for s in continuation.steps
    ]
    end = continuation.end
    if end is not None:
        end = end.model_copy(update={"episode_id": episode_id})
    start = original.start.model_copy(
        update={"metadata": {**original.start.metadata, "resumed_at_call": point.kept_calls}}
    )
    return Trajectory(start=start, calls=[*kept, *calls], steps=[*steps, *more], end=end)


def merge_partial_rollouts(trajectories: Iterable[Trajectory]) -> list[Trajectory]:
    """The store's episodes with every resumed episode joined to its continuation (the
    original's place, the continuation's end); originals without a continuation are kept as
    they are, continuations whose original is missing too."""
    items = list(trajectories)
    by_id = {t.episode_id: t for t in items}
    continued: dict[str, Trajectory] = {}
    for traj in items:
        origin = traj.start.metadata.get(RESUMED_FROM)
        if isinstance(origin, str) and origin in by_id:
            continued[origin] = traj
    out: list[Trajectory] = []
    used = {c.episode_id for c in continued.values()}
    for traj in items:
        if traj.episode_id in used:
            continue
        follow = continued.get(traj.episode_id)
        if follow is None:
            out.append(traj)
            continue
        point = resume_point(traj)
        out.append(merge_resumed(traj, follow, point))
    return out
