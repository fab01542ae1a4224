"""The environment-step records the loop writes: a tool result, an approval pause or decision."""

from __future__ import annotations

import json
import time
from typing import Any

from agentkit.messages import ToolCall
from agentkit.tool import ToolOutcome
from agentkit.trajectory.records import EnvStepRecord, share_fields_set


def tool_step(
    episode_id: str,
    index: int,
    turn: int,
    call: ToolCall,
    outcome: ToolOutcome,
    started_at: float,
    ran: ToolCall | None = None,
) -> EnvStepRecord:
    """The record of one call's result; ``ran`` is the call as it ran (edited arguments)."""
    record = EnvStepRecord(
        episode_id=episode_id,
        index=index,
        turn=turn,
        step_type="tool",
        call=(ran or call) if call.name or call.parse_error else None,
        status=outcome.status.value,
        error=outcome.error,
        error_type=outcome.error_type,
        raw_output_chars=outcome.raw_chars,
        output=outcome.output,
        truncated=outcome.truncated,
        latency_s=outcome.elapsed_s,
        started_at=started_at or time.time(),
    )
    share_fields_set(record)  # every tool step has the same fields
    return record


def approval_step(
    episode_id: str, index: int, turn: int, status: str, payload: list[Any]
) -> EnvStepRecord:
    """A pause for approval (``status`` "awaiting_approval", the pending calls) or the
    decisions a resume went on with (``status`` "decided"), as JSON in ``output``."""
    return EnvStepRecord(
        episode_id=episode_id,
        index=index,
        turn=turn,
        step_type="approval",
        status=status,
        output=json.dumps(payload, ensure_ascii=False),
        started_at=time.time(),
    )
