"""An index of a trajectory store for the viewer: one summary per episode, built in one pass.

For a JSONL store the pass reads each line once, decodes only episode starts and ends (model
calls, which carry the token ids, are recognised by their first bytes and counted), and keeps
the byte offsets of every episode's lines, so showing one episode reads only its own lines. The
index follows a store that is still being written: :meth:`StoreIndex.refresh` scans only the
bytes appended since the last pass. A Parquet store is read whole once (it is columnar).
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from agentkit.trajectory.records import Trajectory
from agentkit.trajectory.store import decode_record, group_records

_HEAD = re.compile(rb'^\{"kind":"(\w+)"(?:,"schema_version":\d+)?,"episode_id":"([^"]*)"')
_PREVIEW_CHARS = 160


class EpisodeSummary(BaseModel):
    """What the episode list shows and filters on."""

    episode_id: str
    ordinal: int
    task_id: str | None = None
    group_id: str | None = None
    sample_index: int | None = None
    status: str = "running"
    reward: float | None = None
    failure: str | None = None
    error: str | None = None
    termination_reason: str = ""
    model: str = ""
    mode: str = "chat"
    started_at: float = 0.0
    elapsed_s: float | None = None
    model_calls: int = 0
    tool_steps: int = 0
    tool_errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    preview: str = ""


class EpisodeFilter(BaseModel):
    status: str | None = None
    task: str | None = None
    group: str | None = None
    min_reward: float | None = None
    max_reward: float | None = None
    text: str | None = None

    def matches(self, item: EpisodeSummary) -> bool:
        if self.status and item.status != self.status:
            return False
        if self.task and self.task.lower() not in (item.task_id or "").lower():
            return False
        if self.group and item.group_id != self.group:
            return False
        if self.min_reward is not None and (item.reward is None or item.reward < self.min_reward):
            return False
        if self.max_reward is not None and (item.reward is None or item.reward > self.max_reward):
            return False
        if self.text:
            needle = self.text.lower()
            haystack = f"{item.episode_id} {item.preview} {item.error or ''}".lower()
            if needle not in haystack:
                return False
        return True


class EpisodePage(BaseModel):
    total: int
    offset: int
    limit: int
    items: list[EpisodeSummary] = Field(default_factory=list)


class StoreIndex:
    """Summaries of every episode of a store, and each episode's lines on demand."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._summaries: dict[str, EpisodeSummary] = {}
        self._order: list[str] = []
        self._lines: dict[str, list[tuple[int, int]]] = {}
        self._parquet: dict[str, Trajectory] | None = None
        self._scanned = 0
        self.bad_lines = 0
        self.manifest: dict[str, Any] | None = None
        self.refresh()

    # -- building -------------------------------------------------------------------------

    def refresh(self) -> None:
        """Index what was appended since the last pass (everything, the first time)."""
        with self._lock:
            if self.path.suffix == ".parquet":
                if self._parquet is None:
                    self._load_parquet()
                return
            size = self.path.stat().st_size
            if size < self._scanned:  # the file was replaced: start again
                self._reset()
            if size > self._scanned:
                self._scan_from(self._scanned)

    def _reset(self) -> None:
        self._summaries.clear()
        self._order.clear()
        self._lines.clear()
        self._scanned = 0
        self.bad_lines = 0

    def _scan_from(self, start: int) -> None:
        with self.path.open("rb") as handle:
            handle.seek(start)
            offset = start
            for line in handle:
                if not line.endswith(b"\n"):
                    break  # a line still being written (or torn): take it on the next pass
                self._index_line(line, offset)
                offset += len(line)
            self._scanned = offset

    def _index_line(self, line: bytes, offset: int) -> None:
        if not line.strip():
            return
        head = _HEAD.match(line)
        if head is None:
            self._index_other(line)
            return
        kind, episode_id = head.group(1).decode(), head.group(2).decode()
        if kind == "episode_start":
            self._add_start(json.loads(line), episode_id)
        summary = self._summaries.get(episode_id)
        if summary is None:
            return  # a record of an episode whose start is not in the store
        self._lines[episode_id].append((offset, len(line)))
        if kind == "model_call":
            summary.model_calls += 1
        elif kind == "env_step":
            self._add_step(summary, line)
        elif kind == "episode_end":
            self._add_end(summary, json.loads(line))

    def _index_other(self, line: bytes) -> None:
        try:
            data = json.loads(line)
        except ValueError:
            self.bad_lines += 1
            return
        if isinstance(data, dict) and data.get("kind") == "manifest":
            self.manifest = self.manifest or data
        else:
            self.bad_lines += 1

    def _add_start(self, data: dict[str, Any], episode_id: str) -> None:
        if episode_id in self._summaries:
            return
        self._order.append(episode_id)
        self._lines[episode_id] = []
        self._summaries[episode_id] = EpisodeSummary(
            episode_id=episode_id,
            ordinal=len(self._order) - 1,
            task_id=_text(data.get("task_id")),
            group_id=_text(data.get("group_id")),
            sample_index=data.get("sample_index"),
            model=data.get("model") or "",
            mode=data.get("mode") or "chat",
            started_at=data.get("started_at") or 0.0,
            preview=_first_user_text(data.get("prompt_messages") or []),
        )

    @staticmethod
    def _add_step(summary: EpisodeSummary, line: bytes) -> None:
        data = json.loads(line)
        if data.get("step_type") == "tool":
            summary.tool_steps += 1
            if data.get("status") != "ok":
                summary.tool_errors += 1

    @staticmethod
    def _add_end(summary: EpisodeSummary, data: dict[str, Any]) -> None:
        usage = data.get("usage") or {}
        summary.status = data.get("status") or summary.status
        summary.reward = data.get("reward")
        summary.failure = data.get("failure")
        summary.error = data.get("error")
        summary.termination_reason = data.get("termination_reason") or ""
        summary.elapsed_s = data.get("elapsed_s")
        summary.prompt_tokens = int(usage.get("prompt_tokens") or 0)
        summary.completion_tokens = int(usage.get("completion_tokens") or 0)

    def _load_parquet(self) -> None:
        from agentkit.trajectory.parquet import read_parquet

        contents = read_parquet(self.path)
        self._parquet = {t.episode_id: t for t in contents.episodes}
        self.manifest = contents.manifest.model_dump(mode="json") if contents.manifest else None
        for ordinal, traj in enumerate(contents.episodes):
            self._order.append(traj.episode_id)
            self._summaries[traj.episode_id] = summarize(traj, ordinal)

    # -- reading --------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._order)

    def page(self, where: EpisodeFilter, offset: int = 0, limit: int = 50) -> EpisodePage:
        with self._lock:
            found = [s for s in (self._summaries[i] for i in self._order) if where.matches(s)]
        items = [s.model_copy() for s in found[offset : offset + limit]]
        return EpisodePage(total=len(found), offset=offset, limit=limit, items=items)

    def summary(self, episode_id: str) -> EpisodeSummary:
        with self._lock:
            return self._summaries[episode_id].model_copy()

    def facets(self) -> dict[str, Any]:
        """Counts for the filter controls: statuses, tasks and groups."""
        with self._lock:
            items = [self._summaries[i] for i in self._order]
        statuses: dict[str, int] = {}
        for item in items:
            statuses[item.status] = statuses.get(item.status, 0) + 1
        rewards = [i.reward for i in items if i.reward is not None]
        return {
            "episodes": len(items),
            "statuses": statuses,
            "tasks": len({i.task_id for i in items if i.task_id is not None}),
            "groups": len({i.group_id for i in items if i.group_id is not None}),
            "reward_min": min(rewards) if rewards else None,
            "reward_max": max(rewards) if rewards else None,
            "bad_lines": self.bad_lines,
            "manifest": self.manifest,
        }

    def trajectory(self, episode_id: str) -> Trajectory:
        """One episode, read from its own lines only."""
        with self._lock:
            if self._parquet is not None:
                return self._parquet[episode_id]
            spans = list(self._lines[episode_id])
        records = []
        with self.path.open("rb") as handle:
            for offset, length in spans:
                handle.seek(offset)
                records.append(decode_record(handle.read(length)))
        return group_records(records).episode(episode_id)


def summarize(traj: Trajectory, ordinal: int) -> EpisodeSummary:
    start, end = traj.start, traj.end
    tools = [s for s in traj.steps if s.step_type == "tool"]
    summary = EpisodeSummary(
        episode_id=traj.episode_id,
        ordinal=ordinal,
        task_id=start.task_id,
        group_id=start.group_id,
        sample_index=start.sample_index,
        model=start.model,
        mode=start.mode,
        started_at=start.started_at,
        model_calls=len(traj.calls),
        tool_steps=len(tools),
        tool_errors=sum(1 for s in tools if s.status != "ok"),
        preview=_first_user_text(start.prompt_messages),
    )
    if end is not None:
        StoreIndex._add_end(summary, end.model_dump(mode="json"))
    return summary


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _first_user_text(messages: list[dict[str, Any]]) -> str:
    for message in messages:
        if message.get("role") == "user":
            content = message.get("content")
            text = content if isinstance(content, str) else json.dumps(content)
            return text[:_PREVIEW_CHARS]
    return ""
