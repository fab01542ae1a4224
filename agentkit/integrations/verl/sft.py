"""Parquet SFT for verl's multi-turn SFT dataset (``verl.utils.dataset.MultiTurnSFTDataset``).

One row per usable finished episode (the same episodes as ``agentkit export --format sft``):

- ``messages``: OpenAI-style messages; assistant turns keep ``reasoning_content`` and their
  ``tool_calls`` carry **dict** arguments (GLM-4.5's template iterates
  ``arguments.items()``; a JSON string crashes it). Each argument value is stored as the text
  the template renders for it (a string as itself, anything else as its JSON), so a column of
  calls to different tools has one type;
- ``tools``: the tool schemas the model was given;
- ``enable_thinking``: top-level, where verl's dataset reads it (``enable_thinking_key``);
- ``episode_id``, ``task_id``, ``group_id``, ``reward``, ``status``.

Parquet stores a column of dicts as one struct type, so a call comes back with every argument
name any call in the file used, the absent ones ``None`` (and tool schemas likewise).
:class:`AgentkitMultiTurnSFTDataset` (a subclass of verl's dataset: set ``data.custom_cls`` to
it) drops those ``None`` entries before the template sees them (verl's plain class would
render them as ``null`` arguments). verl's per-turn tokenization check (each turn rendered
alone, concatenated, compared with the whole render) passes for agentkit's episodes with one
user turn. GLM-4.5's template drops the reasoning of assistant turns before the last user
message, so for dialogues with several user turns the two renders can differ; the per-turn ids
(with their loss masks) are then the right ones to train on, and verl must be told so:
``data.multiturn.ignore_input_ids_mismatch=True``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from agentkit.trajectory.exports import ExportReport, sft_records
from agentkit.trajectory.records import Trajectory


def rendered_value(value: Any) -> str:
    """What GLM-4.5's template writes for an argument value (``v if string else v|tojson``)."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _dict_arguments(call: dict[str, Any]) -> dict[str, Any]:
    function = dict(call.get("function") or {})
    raw = function.get("arguments")
    args = json.loads(raw) if isinstance(raw, str) and raw.strip() else (raw or {})
    if not isinstance(args, dict):
        args = {"arguments": args}
    function["arguments"] = {str(k): rendered_value(v) for k, v in args.items()}
    return {"id": call.get("id") or "", "type": "function", "function": function}


def verl_messages(messages: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """agentkit's SFT messages in verl's shape: dict arguments, no agentkit-only keys."""
    out: list[dict[str, Any]] = []
    for message in messages:
        item = {k: v for k, v in message.items() if k != "call_index"}
        if item.get("tool_calls"):
            item["tool_calls"] = [_dict_arguments(c) for c in item["tool_calls"]]
        out.append(item)
    return out


def verl_sft_records(
    trajectories: Iterable[Trajectory],
    report: ExportReport | None = None,
    *,
    min_reward: float | None = None,
) -> list[dict[str, Any]]:
    """One verl SFT row per usable episode (see the module text); what is left out is in
    ``report``."""
    rows = []
    for record in sft_records(trajectories, report, min_reward=min_reward):
        rows.append(
            {
                "messages": verl_messages(record["messages"]),
                "tools": record["tools"] or None,
                "enable_thinking": bool(record["chat_template_kwargs"]["enable_thinking"]),
                "episode_id": record["episode_id"],
                "task_id": record["task_id"],
                "group_id": record["group_id"],
                "reward": record["reward"],
                "status": record["status"],
            }
        )
    return rows


def write_verl_sft(
    trajectories: Iterable[Trajectory],
    path: str | Path,
    *,
    min_reward: float | None = None,
) -> ExportReport:
    """Write the episodes as a Parquet file verl's multi-turn SFT dataset loads."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    report = ExportReport()
    rows = verl_sft_records(trajectories, report, min_reward=min_reward)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return report


def drop_none(value: Any) -> Any:
    """``value`` without the ``None`` entries Parquet's struct columns add to dicts."""
    if isinstance(value, dict):
        return {k: drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_none(v) for v in value]
    return value


def _dataset_base() -> Any:
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    return MultiTurnSFTDataset


class _Lazy:
    cls: Any = None


def __getattr__(name: str) -> Any:
    # the dataset class is built on first use, so importing this module needs no verl
    if name != "AgentkitMultiTurnSFTDataset":
        raise AttributeError(name)
    if _Lazy.cls is None:
        base = _dataset_base()

        class AgentkitMultiTurnSFTDataset(base):  # type: ignore[misc, valid-type]
            """verl's multi-turn SFT dataset, reading agentkit's Parquet faithfully: the
            ``None`` entries of struct columns (argument names and schema keys of other rows)
            are dropped before the chat template renders the messages and tools."""

            def _read_files_and_process(self) -> None:
                super()._read_files_and_process()
                messages: list[Any] = getattr(self, "messages")  # noqa: B009 (set by verl)
                tools: list[Any] | None = getattr(self, "tools")  # noqa: B009
                self.messages = [drop_none(m) for m in messages]
                self.tools = [drop_none(t) for t in tools] if tools is not None else None

            def _build_messages(self, example: dict[str, Any]) -> Any:
                return drop_none(super()._build_messages(example))

        AgentkitMultiTurnSFTDataset.__module__ = __name__
        _Lazy.cls = AgentkitMultiTurnSFTDataset
    return _Lazy.cls
