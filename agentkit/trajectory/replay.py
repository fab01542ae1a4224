"""Replay data of a training row: its MoE routing and its sampling mask, in slime's shapes.

The routing of a row is its calls' routed experts laid end to end: call ``k`` covers the
positions ``[start_k, start_k + rows_k)`` and the next call starts where it stopped, so a row
of ``n`` tokens gets ``n - 1`` rows (slime's ``rollout_routed_experts``: ``[len(tokens) - 1,
layers, top_k]``). The sampling mask is spread over the response region as slime's top-p
replay keeps it: kept ids flat, one offset per response token plus one, empty spans on tokens
the model did not sample. Anything that does not tile is refused with the reason (``None`` +
a row flag), never padded.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from agentkit.trajectory.records import EnvStepRecord, ModelCallRecord, Trajectory
from agentkit.trajectory.rows import TrainingRow


class ReplayGap(ValueError):
    """A row's calls do not give replay data for every position."""


def row_routed_experts(row: TrainingRow, calls: Sequence[ModelCallRecord]) -> list[object]:
    """``[len(tokens) - 1, ...]`` nested lists of expert ids for the row, or :class:`ReplayGap`."""
    position = 0
    out: list[object] = []
    for call in calls:
        routed = call.routed_experts
        if routed is None:
            raise ReplayGap(f"call {call.index} has no routed experts")
        if routed.start > position:
            raise ReplayGap(f"call {call.index} routing starts at {routed.start}, after {position}")
        # a call may re-cover positions an earlier call gave (it asked from 0): keep the earlier
        skip = position - routed.start
        rows = routed.experts.nested()
        out.extend(rows[skip:])
        position = max(position, routed.start + routed.rows)
    if position != len(row.tokens) - 1:
        raise ReplayGap(f"routing covers {position} positions of {len(row.tokens) - 1}")
    return out


class TopPReplay(BaseModel):
    """slime's top-p replay form over a row's response: ``token_ids[offsets[i]:offsets[i+1]]``
    are the ids kept when response token ``i`` was sampled (empty where the model did not
    sample it)."""

    token_ids: list[int]
    offsets: list[int]


def row_sampling_mask(row: TrainingRow, calls: Sequence[ModelCallRecord]) -> TopPReplay:
    """The row's sampling masks over its response region, or :class:`ReplayGap`."""
    by_index = {c.index: c for c in calls}
    ids: list[int] = []
    offsets = [0]
    spans = {s.start: s for s in row.spans}
    masks: dict[int, list[int]] = {}
    for start, span in spans.items():
        if span.source.value != "model" or span.call_index is None:
            continue
        call = by_index.get(span.call_index)
        if call is None or call.sampling_mask is None:
            raise ReplayGap(f"call {span.call_index} has no sampling mask")
        mask_rows = call.sampling_mask.rows()
        if len(mask_rows) != span.length:
            raise ReplayGap(f"call {span.call_index}: {len(mask_rows)} masks, {span.length} tokens")
        for offset, kept in enumerate(mask_rows):
            masks[start + offset] = kept
    for position in range(row.prompt_len, len(row.tokens)):
        kept = masks.get(position, [])
        ids.extend(kept)
        offsets.append(len(ids))
    return TopPReplay(token_ids=ids, offsets=offsets)


def routed_experts_or_none(
    row: TrainingRow, calls: Sequence[ModelCallRecord]
) -> list[object] | None:
    """The row's routing, or ``None`` when it was not recorded or has a gap
    (:func:`replay_gaps` says which)."""
    if not any(c.routed_experts is not None for c in calls):
        return None
    try:
        return row_routed_experts(row, calls)
    except ReplayGap:
        return None


def sampling_mask_or_none(
    row: TrainingRow, calls: Sequence[ModelCallRecord]
) -> dict[str, list[int]] | None:
    """The row's top-p replay (``{"token_ids", "offsets"}``), or ``None`` (see
    :func:`replay_gaps`)."""
    if not any(c.sampling_mask is not None for c in calls):
        return None
    try:
        return row_sampling_mask(row, calls).model_dump()
    except ReplayGap:
        return None


def replay_gaps(row: TrainingRow, calls: Sequence[ModelCallRecord]) -> list[str]:
    """Why recorded replay data could not be exported for the row (empty when it could)."""
    gaps: list[str] = []
    if any(c.routed_experts is not None for c in calls):
        try:
            row_routed_experts(row, calls)
        except ReplayGap as exc:
            gaps.append(f"routed experts: {exc}")
    if any(c.sampling_mask is not None for c in calls):
        try:
            row_sampling_mask(row, calls)
        except ReplayGap as exc:
            gaps.append(f"sampling mask: {exc}")
    return gaps


def turn_and_tool_scores(trajectory: Trajectory) -> dict[str, list[float]]:
    """verl's ``turn_scores`` (per-turn rewards in turn order) and ``tool_rewards`` (per-tool
    rewards in call order) of an episode, as its tool agent loop names them."""
    end = trajectory.end
    if end is None:
        return {"turn_scores": [], "tool_rewards": []}
    calls = [s.call.id for s in trajectory.items() if isinstance(s, EnvStepRecord) and s.call]
    return {
        "turn_scores": [end.turn_rewards[t] for t in sorted(end.turn_rewards)],
        "tool_rewards": [end.tool_rewards[c] for c in calls if c in end.tool_rewards],
    }
