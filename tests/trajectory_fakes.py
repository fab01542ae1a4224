"""Hand-built token-mode episodes for the trajectory tests (no agent, no server)."""

from __future__ import annotations

import random

from agentkit.messages import ToolCall
from agentkit.trajectory.records import (
    EnvStepRecord,
    EpisodeEnd,
    EpisodeStart,
    EpisodeStatus,
    FailureAttribution,
    ModelCallRecord,
    TokenSegment,
    TokenSource,
    Trajectory,
)


def _ids(rng: random.Random, n: int) -> list[int]:
    return [rng.randrange(10, 150_000) for _ in range(n)]


def _logprobs(rng: random.Random, n: int) -> list[float]:
    # multiples of 1/64: exact in float32, so Parquet reads them back unchanged
    return [-rng.randrange(0, 640) / 64 for _ in range(n)]


def token_episode(
    episode_id: str = "ep_1",
    *,
    turns: int = 3,
    seed: int = 0,
    task_id: str = "task_a",
    sample_index: int = 0,
    reward: float | None = 1.0,
    status: EpisodeStatus = EpisodeStatus.COMPLETED,
    failure: FailureAttribution | None = None,
    finished: bool = True,
) -> Trajectory:
    """An episode of ``turns`` model calls with a tool step between consecutive calls, built the
    way the token session builds them (each prompt extends the previous prompt + output)."""
    rng = random.Random(seed)
    start = EpisodeStart(
        episode_id=episode_id,
        task_id=task_id,
        group_id=task_id,
        sample_index=sample_index,
        mode="tokens",
        token_exact=True,
        instructions="Be brief.",
        prompt_messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": f"question {task_id}"},
        ],
        label="42",
    )
    traj = Trajectory(start=start)
    held: list[int] = []
    appended = [
        TokenSegment(source=TokenSource.PROMPT, ids=_ids(rng, 12)),
        TokenSegment(source=TokenSource.TEMPLATE, ids=[151337]),
    ]
    for turn in range(turns):
        input_ids = held + [i for seg in appended for i in seg.ids]
        n_out = rng.randrange(3, 9)
        output_ids = _ids(rng, n_out)
        last = turn == turns - 1
        call = ToolCall(id=f"call_{turn}", name="lookup", arguments={"q": turn})
        traj.calls.append(
            ModelCallRecord(
                episode_id=episode_id,
                index=turn,
                turn=turn,
                mode="tokens",
                input_ids=input_ids,
                output_ids=output_ids,
                output_logprobs=_logprobs(rng, n_out),
                appended=appended,
                finish_reason="stop",
                weight_version="1",
                prompt_tokens=len(input_ids),
                completion_tokens=n_out,
                cached_tokens=len(held),
                reasoning=f"thinking {turn}",
                content="done" if last else "",
                tool_calls=[] if last else [call],
            )
        )
        held = input_ids + output_ids
        if not last:
            tool_ids = _ids(rng, 5)
            traj.steps.append(
                EnvStepRecord(
                    episode_id=episode_id,
                    index=turn,
                    turn=turn,
                    call=call,
                    output=f"result {turn}",
                    appended_ids=tool_ids,
                    latency_s=0.01,
                )
            )
            appended = [
                TokenSegment(source=TokenSource.TOOL, ids=tool_ids, step_index=turn),
                TokenSegment(source=TokenSource.TEMPLATE, ids=[151337]),
            ]
    if finished:
        traj.end = EpisodeEnd(
            episode_id=episode_id,
            status=status,
            failure=failure,
            reward=reward,
            reward_components={"correct": reward} if reward is not None else {},
        )
    return traj


def records_of(traj: Trajectory) -> list[object]:
    """The records of an episode in the order a loop would emit them."""
    out: list[object] = [traj.start, *traj.items()]
    if traj.end is not None:
        out.append(traj.end)
    return out
