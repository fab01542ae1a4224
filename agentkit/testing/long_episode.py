"""Synthetic token-mode episodes of any length, for storage tests and benchmarks.

Each turn is one model call whose ``input_ids`` are the previous call's ``input_ids +
output_ids`` plus a tool result and a generation prompt (token mode's append-only invariant),
and one tool step; ids and log-probs are deterministic, so sizes are reproducible.
"""

from __future__ import annotations

from agentkit.messages import ToolCall
from agentkit.trajectory.recorder import Record
from agentkit.trajectory.records import (
    EnvStepRecord,
    EpisodeEnd,
    EpisodeStart,
    EpisodeStatus,
    ModelCallRecord,
    TokenSegment,
    TokenSource,
)


def _ids(seed: int, count: int) -> list[int]:
    return [(seed * 7919 + i * 104729) % 151000 + 10 for i in range(count)]


def synthetic_episode(
    turns: int,
    *,
    episode_id: str = "ep_synthetic",
    prompt_tokens: int = 400,
    output_tokens: int = 120,
    tool_tokens: int = 200,
    template_tokens: int = 3,
) -> list[Record]:
    """The records of one ``turns``-call token-mode episode, in written order."""
    records: list[Record] = [
        EpisodeStart(episode_id=episode_id, task_id="t", mode="tokens", token_exact=True)
    ]
    held: list[int] = []
    for turn in range(turns):
        if turn == 0:
            appended = [
                TokenSegment(source=TokenSource.PROMPT, ids=_ids(1, prompt_tokens)),
                TokenSegment(source=TokenSource.TEMPLATE, ids=_ids(2, template_tokens)),
            ]
        else:
            appended = [
                TokenSegment(source=TokenSource.TOOL, ids=_ids(10 + turn, tool_tokens)),
                TokenSegment(source=TokenSource.TEMPLATE, ids=_ids(2, template_tokens)),
            ]
        input_ids = held + [i for seg in appended for i in seg.ids]
        output = _ids(1000 + turn, output_tokens)
        call = ToolCall(id=f"call_{turn}", name="run", arguments={"turn": turn})
        records.append(
            ModelCallRecord(
                episode_id=episode_id,
                index=turn,
                turn=turn,
                mode="tokens",
                input_ids=input_ids,
                output_ids=output,
                output_logprobs=[-((i % 17) / 8.0) for i in range(output_tokens)],
                appended=appended,
                finish_reason="stop",
                tool_calls=[call],
                prompt_tokens=len(input_ids),
                completion_tokens=output_tokens,
            )
        )
        records.append(
            EnvStepRecord(
                episode_id=episode_id, index=turn, turn=turn, call=call, output="ok " * 20
            )
        )
        held = input_ids + output
    records.append(EpisodeEnd(episode_id=episode_id, status=EpisodeStatus.COMPLETED, reward=1.0))
    return records
