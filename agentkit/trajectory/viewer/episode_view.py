"""One episode as the viewer shows it: a timeline of entries and a loss-masked token view."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field

from agentkit.tokenizer import Tokenizer
from agentkit.trajectory.records import EnvStepRecord, ModelCallRecord, TokenSource, Trajectory
from agentkit.trajectory.rows import NotTokenExact, RowInvariantError, build_rows

MAX_TEXT = 20_000


class TimelineEntry(BaseModel):
    """One thing that happened: ``kind`` is prompt, reasoning, text, tool_call, tool_result,
    user, agent_reply or model_error; ``turn`` the model turn it belongs to."""

    kind: str
    turn: int | None = None
    role: str | None = None
    text: str = ""
    name: str | None = None
    call_id: str | None = None
    arguments: Any = None
    status: str | None = None
    error: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)


class TokenPiece(BaseModel):
    source: str
    trained: bool
    ids: list[int]
    text: str | None = None


class TokenRowView(BaseModel):
    row_index: int
    tokens: int
    prompt_len: int
    trained_tokens: int
    pieces: list[TokenPiece]
    flags: list[str] = Field(default_factory=list)


class EpisodeView(BaseModel):
    summary: dict[str, Any]
    start: dict[str, Any]
    end: dict[str, Any] | None
    timeline: list[TimelineEntry]
    token_rows: list[TokenRowView] = Field(default_factory=list)
    token_note: str | None = None


def episode_view(
    traj: Trajectory, summary: dict[str, Any], tokenizer: Tokenizer | None = None
) -> EpisodeView:
    start = traj.start.model_dump(mode="json", exclude={"prompt_messages", "tools"})
    start["tool_names"] = [t.get("function", {}).get("name") for t in traj.start.tools]
    end = None
    if traj.end is not None:
        end = traj.end.model_dump(mode="json", exclude={"messages", "output"})
        end["output"] = _clip(_as_text(traj.end.output))
    rows, note = token_rows(traj, tokenizer)
    return EpisodeView(
        summary=summary,
        start=start,
        end=end,
        timeline=timeline(traj),
        token_rows=rows,
        token_note=note,
    )


def timeline(traj: Trajectory) -> list[TimelineEntry]:
    entries = [
        TimelineEntry(
            kind="prompt", role=str(m.get("role")), text=_clip(_as_text(m.get("content")))
        )
        for m in traj.start.prompt_messages
    ]
    for item in chronological(traj):
        if isinstance(item, ModelCallRecord):
            entries += _call_entries(item)
        else:
            entries.append(_step_entry(item))
    return entries


def chronological(traj: Trajectory) -> list[ModelCallRecord | EnvStepRecord]:
    """Calls and steps in the order they happened: by start time when every record has one
    (a later user message is recorded with the turn number of the call that follows it), else
    by turn as :meth:`Trajectory.items` orders them."""
    items = traj.items()
    if all(item.started_at > 0 for item in items):
        return sorted(items, key=lambda item: item.started_at)
    return items


def _call_entries(call: ModelCallRecord) -> list[TimelineEntry]:
    meta = {
        "call_index": call.index,
        "prompt_tokens": call.prompt_tokens,
        "completion_tokens": call.completion_tokens,
        "cached_tokens": call.cached_tokens,
        "finish_reason": call.finish_reason,
        "elapsed_s": round(call.elapsed_s, 3),
        "attempts": len(call.attempts),
        "weight_version": call.weight_version,
    }
    if call.failed:
        return [TimelineEntry(kind="model_error", turn=call.turn, error=call.error, meta=meta)]
    entries: list[TimelineEntry] = []
    if call.reasoning:
        entries.append(TimelineEntry(kind="reasoning", turn=call.turn, text=_clip(call.reasoning)))
    if call.content.strip():
        entries.append(TimelineEntry(kind="text", turn=call.turn, text=_clip(call.content)))
    for tool_call in call.tool_calls:
        entries.append(
            TimelineEntry(
                kind="tool_call",
                turn=call.turn,
                name=tool_call.name,
                call_id=tool_call.id,
                arguments=tool_call.arguments,
            )
        )
    if not entries:
        entries.append(TimelineEntry(kind="text", turn=call.turn, text=""))
    entries[0].meta = meta
    for problem in call.problems:
        entries.append(TimelineEntry(kind="problem", turn=call.turn, error=problem))
    return entries


def _step_entry(step: EnvStepRecord) -> TimelineEntry:
    if step.step_type != "tool":
        return TimelineEntry(kind=step.step_type, turn=step.turn, text=_clip(step.output))
    return TimelineEntry(
        kind="tool_result",
        turn=step.turn,
        name=step.call.name if step.call else None,
        call_id=step.call.id if step.call else None,
        text=_clip(step.output),
        status=step.status,
        error=step.error,
        meta={
            "error_type": step.error_type,
            "latency_s": round(step.latency_s, 3),
            "raw_output_chars": step.raw_output_chars,
            "truncated": step.truncated,
            "appended_tokens": len(step.appended_ids) if step.appended_ids else None,
        },
    )


def token_rows(
    traj: Trajectory, tokenizer: Tokenizer | None
) -> tuple[list[TokenRowView], str | None]:
    """The episode's training rows (agentkit.trajectory.rows) split into runs of one source;
    ``trained`` marks the loss-mask-1 runs (model tokens)."""
    if not traj.calls:
        return [], "no model calls"
    try:
        rows = build_rows(traj, check=False)
    except NotTokenExact:
        return [], "chat-mode episode: the store holds no token ids (record in token mode)"
    except RowInvariantError as exc:
        return [], f"the calls do not make a sound training row: {exc}"
    views = []
    for row in rows:
        pieces = []
        for span in row.spans:
            ids = row.tokens[span.start : span.start + span.length]
            text = tokenizer.decode(ids) if tokenizer is not None else None
            pieces.append(
                TokenPiece(
                    source=span.source.value,
                    trained=span.source is TokenSource.MODEL,
                    ids=ids,
                    text=text,
                )
            )
        views.append(
            TokenRowView(
                row_index=row.row_index,
                tokens=len(row.tokens),
                prompt_len=row.prompt_len,
                trained_tokens=sum(row.loss_mask),
                pieces=pieces,
                flags=row.flags,
            )
        )
    note = None if tokenizer is not None else "token ids only: pass --tokenizer to see text"
    return views, note


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _clip(text: str) -> str:
    if len(text) <= MAX_TEXT:
        return text
    return text[:MAX_TEXT] + f"\n…[{len(text) - MAX_TEXT} more characters]"
